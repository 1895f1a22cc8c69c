"""Definition imports are bounded: each hostile file ends in a clear error naming file and line.

Every case here once cost gigabytes or ended in a Python traceback (issue 12). Each runs the
whole path (read the directory, parse, validate) under tracemalloc and asserts that nothing
was written and that Python allocated under 100 MB at its peak; refusals stop long before.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from infracms.db import session_scope
from infracms.errors import InvalidInput, PayloadTooLarge
from infracms.plugins import Plugins
from infracms.services import definitions, definitions_io, inventory, modules
from tests.helpers import ADMIN, audit_size, make_org
from tests.services.test_modules import FAKES

HEAD = "module: motd\ntarget: {host: web1}\nsettings:\n"
MEMORY_BOUND = 100 * 2**20


@dataclass
class Importer:
    """An organisation `clinic` with motd enabled and host web1, and a folder to import."""

    engine: Engine
    plugins: Plugins
    folder: Path

    def refusal(self) -> InvalidInput:
        """The error of importing the folder, checking that nothing was written."""
        before = audit_size(self.engine)
        with pytest.raises(InvalidInput) as caught, session_scope(self.engine, write=True) as s:
            self.run(s)
        assert audit_size(self.engine) == before
        with session_scope(self.engine) as session:
            found = definitions.list_definitions(
                session=session, actor=ADMIN, organisation="clinic"
            )
        assert found == []
        assert caught.value.errors, caught.value.detail
        return caught.value

    def refused(self) -> dict[str, str]:
        """The errors of importing the folder (nothing written)."""
        return self.refusal().errors or {}

    def run(self, session: Session) -> definitions_io.ImportReport:
        """Import the folder, reading at most 1 MiB."""
        return definitions_io.import_definitions(
            session=session,
            actor=ADMIN,
            plugins=self.plugins,
            organisation="clinic",
            files=definitions_io.read_directory(self.folder, max_bytes=2**20),
        )


@pytest.fixture
def importer(engine: Engine, tmp_path: Path) -> Importer:
    plugins = Plugins.load(builtins=FAKES, entry_points=False)
    make_org(engine, "clinic")
    with session_scope(engine, write=True) as session:
        for name in ("base", "motd"):
            modules.set_available(
                session=session, actor=ADMIN, plugins=plugins, name=name, available=True
            )
        modules.enable_module(
            session=session, actor=ADMIN, plugins=plugins, organisation="clinic", name="motd"
        )
        inventory.create_host(
            session=session,
            actor=ADMIN,
            organisation="clinic",
            data={"name": "web1", "address": "198.51.100.1"},
        )
    (tmp_path / "import").mkdir()
    return Importer(engine, plugins, tmp_path / "import")


@pytest.fixture
def bounded() -> Iterator[None]:
    """Asserts the test's peak Python allocation stayed under the bound."""
    tracemalloc.start()
    yield
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"peak {peak / 2**20:.1f} MiB, expected under 100 MiB"


def alias_bomb(levels: int = 9, fan: int = 10) -> str:
    """Nested mappings, each referring to the one before `fan` times (fan**levels leaves)."""
    lines = ["  l0: &l0 {a: 1, b: 2}"]
    for level in range(1, levels):
        refs = ", ".join(f"k{n}: *l{level - 1}" for n in range(fan))
        lines.append(f"  l{level}: &l{level} {{{refs}}}")
    return HEAD + "\n".join(lines) + "\n"


@pytest.mark.usefixtures("bounded")
def test_an_alias_bomb_is_refused_at_its_first_alias(
    importer: Importer,
) -> None:
    bomb = alias_bomb()
    assert len(bomb) < 1000
    (importer.folder / "bomb.yaml").write_text(bomb)
    assert importer.refused() == {
        "bomb.yaml:5": "aliases (*name) are not allowed: write the value out"
    }


@pytest.mark.usefixtures("bounded")
def test_a_recursive_alias_is_refused(
    importer: Importer,
) -> None:
    (importer.folder / "loop.yaml").write_text(HEAD + "  message: &m [a, *m]\n")
    assert importer.refused() == {
        "loop.yaml:4": "aliases (*name) are not allowed: write the value out"
    }


def test_a_50_mb_file_is_refused_before_it_is_read(
    importer: Importer,
) -> None:
    with (importer.folder / "big.yaml").open("w") as handle:
        handle.write(HEAD + "  message: x\n  lines:\n")
        for _ in range(50):
            handle.write("  - 1\n" * (2**20 // 6))
    size = (importer.folder / "big.yaml").stat().st_size
    assert size > 50_000_000
    tracemalloc.start()
    caught = importer.refusal()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert isinstance(caught, PayloadTooLarge)
    assert caught.errors == {"big.yaml": f"{size} bytes; an import reads {2**20} at most"}
    assert peak < 4 * 2**20, f"peak {peak / 2**20:.1f} MiB: the file was read"


@pytest.mark.usefixtures("bounded")
def test_the_size_limit_counts_all_files_together(
    importer: Importer,
) -> None:
    for n in range(3):
        (importer.folder / f"part{n}.yaml").write_text(HEAD + "  message: " + "x" * 400_000 + "\n")
    caught = importer.refusal()
    assert isinstance(caught, PayloadTooLarge)
    assert (
        caught.detail
        == "part2.yaml takes the import over 1048576 bytes (INFRACMS_IMPORT_MAX_BYTES)"
    )


@pytest.mark.usefixtures("bounded")
@pytest.mark.parametrize("depth", [500, 5000, 100_000])
def test_deep_nesting_is_refused(
    importer: Importer,
    depth: int,
) -> None:
    (importer.folder / "flow.yaml").write_text(
        HEAD + "  message: " + "[" * depth + "]" * depth + "\n"
    )
    block = "".join(f"{'  ' * (n + 1)}k{n}:\n" for n in range(200))
    (importer.folder / "block.yaml").write_text(HEAD + block + "  " * 201 + "end: 1\n")
    assert importer.refused() == {
        "block.yaml:34": "nested deeper than 32 levels",
        "flow.yaml:4": "nested deeper than 32 levels",
    }


@pytest.mark.usefixtures("bounded")
@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("  1: a\n  b: c\n", 4, "keys must be text (quote a number or true/false/null)"),
        ("  b: c\n  true: a\n", 5, "keys must be text (quote a number or true/false/null)"),
        ("  ? [a, b]\n  : c\n", 4, "keys must be text (quote a number or true/false/null)"),
        ("  message: a\n  message: b\n", 5, "key 'message' appears twice"),
        ("  lines: " + "9" * 5000 + "\n", 4, "an integer of more than 32 characters"),
        ("  lines: 9223372036854775808\n", 4, "an integer outside the 64-bit range"),
        ("  lines: 1.0e+400\n", 4, "numbers must be finite (no .inf, .nan or overflow)"),
        ("  lines: .nan\n", 4, "numbers must be finite (no .inf, .nan or overflow)"),
        ('  message: "a\\0b"\n', 4, "text may not hold a NUL character"),
        ("  message: !!binary aGVsbG8=\n", 4, "the tag tag:yaml.org,2002:binary is not allowed"),
        ("  message: !!python/name:os.system\n", 4, "the tag tag:yaml.org,2002:python/name"),
        ("  message: a\x00b\n", 4, "character #x0000 is not allowed in YAML"),
    ],
)
def test_values_outside_json_are_refused_with_file_and_line(
    importer: Importer,
    text: str,
    line: int,
    problem: str,
) -> None:
    (importer.folder / "bad.yaml").write_text(HEAD + text)
    errors = importer.refused()
    assert list(errors) == [f"bad.yaml:{line}"]
    assert errors[f"bad.yaml:{line}"].startswith(problem)


def test_values_are_counted_across_files(
    importer: Importer,
) -> None:
    """Not under tracemalloc: it would make the 20,000 values' parsing several times slower."""
    for n in range(3):
        (importer.folder / f"list{n}.yaml").write_text(HEAD + "  lines: [" + "1," * 7_000 + "1]\n")
    assert importer.refused() == {"list2.yaml:4": "the import holds more than 20000 values"}


@pytest.mark.usefixtures("bounded")
def test_invalid_utf8_is_named_by_file_and_line(
    importer: Importer,
) -> None:
    (importer.folder / "latin1.yaml").write_bytes(HEAD.encode() + b"  message: caf\xe9\n")
    assert importer.refused() == {"latin1.yaml:4": "not UTF-8: byte 0xe9 at column 15"}


def test_a_link_inside_the_directory_is_read(
    importer: Importer,
) -> None:
    (importer.folder / "real.yml").write_text(HEAD + "  message: hello\n")
    (importer.folder / "alias.yaml").symlink_to("real.yml")
    assert definitions_io.read_directory(importer.folder) == {
        "alias.yaml": HEAD + "  message: hello\n"
    }


def test_dates_stay_text_and_an_export_writes_no_alias(importer: Importer) -> None:
    (importer.folder / "dated.yaml").write_text(HEAD + "  message: 2024-01-02\n")
    with session_scope(importer.engine, write=True) as session:
        assert importer.run(session).created == ["dated"]
    with session_scope(importer.engine) as session:
        found = definitions.get_definition(
            session=session, actor=ADMIN, organisation="clinic", name="dated"
        )
    assert found.settings and found.settings["message"] == "2024-01-02"
    shared = {"a": 1}
    text = definitions_io._to_yaml(
        found.model_copy(update={"settings": {"x": shared, "y": shared}})
    )
    assert "&" not in text and "*" not in text
