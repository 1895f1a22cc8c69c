"""The `wireguard` module: a WireGuard interface and its peers."""
