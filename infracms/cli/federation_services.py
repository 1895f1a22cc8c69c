"""`infracms offering …`, `provision …`, `service …`, `usage …`, `broker …`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add these command groups to the main app."""
