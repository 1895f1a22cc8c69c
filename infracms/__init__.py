"""infracms: a self-hosted, federated content management system for infrastructure."""

__version__ = "0.1.0"
