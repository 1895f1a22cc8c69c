"""The `users` module: accounts, SSH keys and sudo rights."""
