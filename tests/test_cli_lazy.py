"""The CLI loads a command's module when the command runs: `infracms --help` lists every
command from `infracms.cli.lazy.COMMANDS` without importing them, and each listed line is
the command's own help."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer
from typer import _click as click
from typer.core import TyperGroup

from infracms.cli import app
from infracms.cli.lazy import COMMANDS, load


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_listed_command_loads_with_the_help_it_is_listed_with(name: str) -> None:
    command = load(name)
    assert command.get_short_help_str(500) == COMMANDS[name].help


def test_the_commands_listed_are_every_command_the_modules_register() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    listed = group.list_commands(click.Context(group))
    assert listed == list(COMMANDS)
    for name in ("init", "peer", "offering"):  # register() adds these beside others
        source = COMMANDS[name].module
        holder = typer.Typer()
        __import__(source, fromlist=["register"]).register(holder)
        added = typer.main.get_group(holder).list_commands(click.Context(group))
        missing = [n for n in added if n not in COMMANDS]
        assert missing == [], f"{source}.register adds {missing}, not in COMMANDS"


def test_help_imports_no_command_module() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['infracms', '--help']\n"
        "from infracms.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('infracms.services', "
        "'infracms.cli.', 'infracms.models', 'sqlalchemy')))\n"
        "print('LOADED', loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "LOADED ['infracms.cli.lazy']" in done.stdout, done.stdout[-2000:]
    assert "serve" in done.stdout and "audit" in done.stdout
