"""Reading definition files for an import, with bounds: what a hostile file cannot do.

An import reads the ``*.yaml`` files of one directory. Each bound below is checked
before the work it protects, and every refusal names the file and line:

- bytes: all files together at most ``INFRACMS_IMPORT_MAX_BYTES`` (checked with
  ``fstat`` before reading, and again while reading);
- files: regular files only; a symbolic link is followed only to a file inside the
  directory, and its target is never read, named nor echoed otherwise;
- text: UTF-8, and the line of the first byte that is not;
- YAML: aliases (``*name``) are refused rather than expanded: an alias can make a
  small file describe an exponentially large document (a "billion laughs"), and the
  exporter never writes one, so refusing costs a hand-written file nothing it needs;
  nesting at most ``MAX_DEPTH``, at most ``MAX_NODES`` values in all files (about a
  a second of pure-Python parsing and a few MB of nodes), keys are text
  and appear once, integers fit 64 bits, numbers are finite, no NUL in text, and only
  the JSON types (dates stay strings; ``!!binary``, ``!!set`` and other tags refused).
"""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from infracms.errors import InvalidInput, PayloadTooLarge

MAX_DEPTH = 32
MAX_NODES = 20_000
MAX_INT_CHARS = 32
STR, INT, FLOAT, BOOL, NULL, SEQ, MAP = (
    f"tag:yaml.org,2002:{kind}" for kind in ("str", "int", "float", "bool", "null", "seq", "map")
)


def read_directory(directory: Path, *, max_bytes: int) -> dict[str, str]:
    """The ``*.yaml`` files of `directory` by name, refusing any over the bounds."""
    if not directory.is_dir():
        raise InvalidInput(f"{directory} is not a directory", errors={"directory": "not found"})
    root = directory.resolve()
    files: dict[str, str] = {}
    errors: dict[str, str] = {}
    budget = max_bytes
    for path in sorted(directory.glob("*.yaml")):
        try:
            raw = _read_one(path, root, budget, max_bytes)
            files[path.name] = _decode(path.name, raw)
            budget -= len(raw)
        except PayloadTooLarge:
            raise
        except InvalidInput as exc:
            errors.update(exc.errors or {path.name: exc.detail})
    if errors:
        raise InvalidInput(f"{len(errors)} unreadable file(s); nothing was changed", errors=errors)
    return files


def _read_one(path: Path, root: Path, budget: int, max_bytes: int) -> bytes:
    target = path.resolve()
    if path.is_symlink() and not target.is_relative_to(root):
        raise InvalidInput("link", errors={path.name: "a link out of the directory: not followed"})
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError as exc:
        raise InvalidInput("unreadable", errors={path.name: exc.strerror or "unreadable"}) from exc
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise InvalidInput("not a file", errors={path.name: "not a regular file"})
        size = status.st_size
        raw = _read_at_most(fd, min(size, budget) + 1)
    finally:
        os.close(fd)
    if len(raw) > budget:
        raise PayloadTooLarge(
            f"{path.name} takes the import over {max_bytes} bytes (INFRACMS_IMPORT_MAX_BYTES)",
            errors={path.name: f"{max(size, len(raw))} bytes; an import reads {max_bytes} at most"},
        )
    return raw


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    while limit > 0 and (chunk := os.read(fd, min(limit, 1 << 20))):
        chunks.append(chunk)
        limit -= len(chunk)
    return b"".join(chunks)


def _decode(name: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        problem = f"not UTF-8: byte 0x{raw[exc.start]:02x} at column {column}"
        raise InvalidInput("not UTF-8", errors={f"{name}:{line}": problem}) from exc


def load(name: str, text: str, *, max_nodes: int = MAX_NODES) -> tuple[Any, yaml.Node | None, int]:
    """The document in `text`, its node tree and its number of values, or InvalidInput.

    The error names the file and line; `max_nodes` is what is left of the import's budget.
    """
    loader: _ImportLoader | None = None
    try:
        loader = _ImportLoader(text, max_nodes)
        node = loader.get_single_node()
        document = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise InvalidInput(
            "an import file is not YAML", errors=yaml_error(name, text, exc)
        ) from exc
    finally:
        if loader is not None:
            loader.dispose()
    return document, node, loader._nodes


def yaml_error(name: str, text: str, exc: yaml.YAMLError) -> dict[str, str]:
    """`{file:line: problem}` for a YAML error (a reader error has a position, not a mark)."""
    if isinstance(exc, yaml.reader.ReaderError):
        line = text[: exc.position].count("\n") + 1
        return {f"{name}:{line}": f"character #x{exc.character:04x} is not allowed in YAML"}
    mark = getattr(exc, "problem_mark", None)
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if context and context_mark is not None:
        problem += f" ({context} started on line {context_mark.line + 1})"
    return {f"{name}:{mark.line + 1}" if mark else name: problem}


def _refuse(problem: str, node_or_mark: Any) -> yaml.MarkedYAMLError:
    mark = getattr(node_or_mark, "start_mark", node_or_mark)
    return yaml.constructor.ConstructorError(None, None, problem, mark)


class _ImportLoader(yaml.SafeLoader):
    """A SafeLoader with the bounds in the module docstring, checked while composing."""

    def __init__(self, stream: str, max_nodes: int) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0
        self._max_nodes = max_nodes

    def compose_node(self, parent: Any, index: Any) -> Any:
        problem = None
        if self.check_event(yaml.AliasEvent):
            problem = "aliases (*name) are not allowed: write the value out"
        elif self._nodes >= self._max_nodes:
            problem = f"the import holds more than {MAX_NODES} values"
        elif self._depth >= MAX_DEPTH:
            problem = f"nested deeper than {MAX_DEPTH} levels"
        if problem:
            raise _refuse(problem, self.peek_event().start_mark)  # type: ignore[no-untyped-call]
        self._nodes += 1
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        # The scanner looks ahead through every open bracket (each may start a key):
        # refused here, a deep flow costs nothing; refused while composing, seconds.
        if self.flow_level >= MAX_DEPTH:
            raise _refuse(f"nested deeper than {MAX_DEPTH} levels", self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def compose_mapping_node(self, anchor: Any) -> Any:
        node = super().compose_mapping_node(anchor)
        seen: set[str] = set()
        for key, _value in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag != STR:
                raise _refuse("keys must be text (quote a number or true/false/null)", key)
            if key.value in seen:
                raise _refuse(f"key {key.value!r} appears twice", key)
            seen.add(key.value)
        return node

    def construct_text(self, node: yaml.ScalarNode) -> str:
        value = str(self.construct_scalar(node))
        if "\x00" in value:
            raise _refuse("text may not hold a NUL character", node)
        return value

    def construct_int(self, node: yaml.ScalarNode) -> int:
        if len(node.value) > MAX_INT_CHARS:
            raise _refuse(f"an integer of more than {MAX_INT_CHARS} characters", node)
        value = int(self.construct_yaml_int(node))
        if not -(2**63) <= value < 2**63:
            raise _refuse("an integer outside the 64-bit range", node)
        return value

    def construct_float(self, node: yaml.ScalarNode) -> float:
        value = float(self.construct_yaml_float(node))
        if not math.isfinite(value):
            raise _refuse("numbers must be finite (no .inf, .nan or overflow)", node)
        return value

    def construct_other(self, node: yaml.Node) -> None:
        raise _refuse(f"the tag {node.tag} is not allowed (only JSON's types are)", node)


# Only JSON's types: each tag has its bounded constructor; any other tag is refused.
_ImportLoader.yaml_constructors = {
    STR: _ImportLoader.construct_text,
    INT: _ImportLoader.construct_int,
    FLOAT: _ImportLoader.construct_float,
    BOOL: yaml.SafeLoader.construct_yaml_bool,
    NULL: yaml.SafeLoader.construct_yaml_null,
    SEQ: yaml.SafeLoader.construct_yaml_seq,
    MAP: yaml.SafeLoader.construct_yaml_map,
    None: _ImportLoader.construct_other,
}
# Dates and `=` stay the strings they were typed as, as they would in JSON.
_ImportLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag in (BOOL, INT, FLOAT, NULL)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def key_lines(node: yaml.MappingNode, prefix: str = "") -> dict[str, int]:
    """The line of each key by dotted path (linear: the tree has no aliases)."""
    lines: dict[str, int] = {}
    for key, value in node.value:
        path = f"{prefix}{key.value}"
        lines[path] = key.start_mark.line + 1
        if isinstance(value, yaml.MappingNode):
            lines.update(key_lines(value, path + "."))
    return lines
