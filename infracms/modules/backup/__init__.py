"""The `backup` module: restic backups on a systemd timer."""
