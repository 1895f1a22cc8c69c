"""The `ssh_hardening` module: a hardened sshd configuration."""
