"""The `firewall` module: an nftables rule set."""
