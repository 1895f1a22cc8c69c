"""Test support: fixtures for PostgreSQL, a browser and a live server."""
