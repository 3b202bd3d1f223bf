"""Reading and writing YAML files: safe loader only, errors with file and line.

Beyond PyYAML's safe loader, autokd refuses what would otherwise pass silently or hang:

* a key written twice in one mapping (PyYAML keeps the last one without a word);
* a document whose aliases expand to more than :data:`MAX_NODES` nodes or :data:`MAX_CHARS`
  characters (a "billion laughs" bomb is a few hundred bytes that expand to gigabytes once
  anything walks it: a JSON dump of the task, a YAML dump of the space, an error message) or
  that refers to itself;
* a path that is not a regular file (a FIFO would block forever, a device never ends), checked
  before it is opened, and a file larger than :data:`MAX_FILE_BYTES`.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

from autokd.errors import ConfigError, short_repr

MAX_FILE_BYTES = 10 * 1024 * 1024  # a config is a few kB; the largest sensible one is far below this
MAX_NODES = 100_000  # scalars, lists and mappings after alias expansion
MAX_CHARS = 2 * MAX_FILE_BYTES  # characters of all scalars after alias expansion


class _Loader(yaml.SafeLoader):
    """The safe loader with YAML 1.2's plain scalars: ``1e-3`` is a float, not the string '1e-3';
    ``010`` is ten (YAML 1.1: eight), ``1:00`` a string (YAML 1.1: sixty), ``yes``/``no``/``on``/
    ``off`` strings (YAML 1.1: booleans; only true/false are), ``2024-01-01`` a string (YAML 1.1: a
    date); ``_`` may still separate digits; a key written twice in one mapping is an error."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            _refuse_duplicate_keys(self, node)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node):
        """Decimal (a leading zero is still decimal), ``0x`` hexadecimal or ``0o`` octal, ``_`` ignored."""
        text = self.construct_scalar(node).replace("_", "")
        if len(text) > 4300:  # Python's own limit for decimals, kept for 0x and 0o too (it printing them fails)
            raise ValueError("an integer of more than 4300 digits")
        sign, digits = (-1, text[1:]) if text[:1] == "-" else (1, text.lstrip("+"))
        base = {"0x": 16, "0o": 8}.get(digits[:2].lower(), 10)
        return sign * int(digits[2:] if base != 10 else digits, base)


_INT, _BOOL, _FLOAT, _DATE = ("tag:yaml.org,2002:" + kind for kind in ("int", "bool", "float", "timestamp"))
_Loader.yaml_implicit_resolvers = {  # YAML 1.1's int, bool, float and date rules out; 1.2's below
    first: [(tag, rule) for tag, rule in rules if tag not in (_INT, _BOOL, _FLOAT, _DATE)]
    for first, rules in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Loader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?[0-9][0-9_]*|[-+]?0x[0-9a-fA-F_]+|[-+]?0o[0-7_]+)$"), list("-+0123456789"))
_Loader.add_implicit_resolver(_FLOAT, re.compile(
    r"""^(?:[-+]?[0-9][0-9_]*(?:\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+)|[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X), list("-+0123456789."))
_Loader.add_constructor(_INT, _Loader.construct_yaml_int)

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _MarkedProblem(yaml.MarkedYAMLError):
    """A problem found by autokd's checks, reported like PyYAML's own (with its line)."""

    def __init__(self, problem: str, mark):
        super().__init__(problem=problem, problem_mark=mark)


def _refuse_duplicate_keys(loader: _Loader, node: yaml.MappingNode) -> None:
    """Raise a problem naming the first key written twice in ``node`` and the lines of both."""
    seen: dict = {}
    for i, (key_node, _) in enumerate(node.value):
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
            continue  # merged keys (<<) may be overridden; non-scalar keys are PyYAML's to refuse
        key = loader.construct_object(key_node)
        try:
            first = seen.setdefault(key, i)
        except TypeError:  # an unhashable key: PyYAML reports it itself
            continue
        if first != i:
            first_line = node.value[first][0].start_mark.line + 1
            raise _MarkedProblem(f"duplicate key {short_repr(key, 60)} (first at line {first_line})", key_node.start_mark)


def _expanded_size(root: yaml.Node) -> tuple[int, int]:
    """(nodes, characters of scalars) of ``root`` with every alias expanded, each capped just
    past its bound (:data:`MAX_NODES`, :data:`MAX_CHARS`).

    Shared nodes (aliases) are counted once per use, memoised per node, so a bomb is measured
    in linear time without being expanded. A node that contains itself is an error.
    """
    sizes: dict[int, tuple[int, int]] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            parts = [sizes[id(c)] for c in _children(node)]
            own = len(node.value) if isinstance(node, yaml.ScalarNode) else 0
            sizes[key] = (min(MAX_NODES + 1, 1 + sum(p[0] for p in parts)),
                          min(MAX_CHARS + 1, own + sum(p[1] for p in parts)))
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise _MarkedProblem("an alias refers to a node that contains it (a recursive structure)", node.start_mark)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def read_text_file(path: str | Path, what: str = "YAML file", max_bytes: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of ``path``, refusing anything but a regular file of at most ``max_bytes``.

    The type is checked before the file is opened (opening a FIFO blocks until a writer comes),
    and again on the open descriptor.
    """
    path = Path(path).expanduser()
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ConfigError(f"file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    _check_regular(path, info, what, max_bytes)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            _check_regular(path, os.fstat(handle.fileno()), what, max_bytes)
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > max_bytes:
        raise ConfigError(f"{path} grew beyond {max_bytes:,} bytes while being read; a {what} may hold at most that")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read {path}: not UTF-8 text (byte {exc.start}: {raw[exc.start:exc.start + 1]!r})") from None


def _check_regular(path: Path, info: os.stat_result, what: str, max_bytes: int) -> None:
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        raise ConfigError(f"{path} is a folder, expected a {what}")
    if not stat.S_ISREG(mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a character device" if stat.S_ISCHR(mode)
                else "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a file")
        raise ConfigError(f"{path} is {kind}, expected a regular {what}")
    if info.st_size > max_bytes:
        raise ConfigError(f"{path} is {info.st_size:,} bytes; a {what} may hold at most {max_bytes:,} bytes "
                          f"({max_bytes / 2**20:g} MiB)")


def load_yaml_file(path: str | Path) -> dict:
    """Load a YAML mapping from ``path`` with the safe loader (no tags, nothing evaluated)."""
    path = Path(path).expanduser()
    return load_yaml_text(read_text_file(path), source=str(path))


def load_yaml_text(text: str, source: str = "<text>") -> dict:
    """Parse YAML text that must hold a mapping; syntax errors name the line."""
    data = _load(text, source)
    if data is None:
        raise ConfigError(f"{source} is empty, expected a YAML mapping")
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must hold a YAML mapping at the top, not a {type(data).__name__}")
    return data


def _load(text: str, source: str) -> Any:
    """The one document of ``text``, checked (size, duplicate keys); every problem a ConfigError."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        nodes, chars = _expanded_size(node)
        if nodes > MAX_NODES or chars > MAX_CHARS:
            raise ConfigError(
                f"{source} expands to more than {MAX_NODES:,} values or {MAX_CHARS:,} characters once its "
                f"aliases (*name) are resolved; a config may hold at most that (an alias bomb?)"
            )
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}, line {mark.line + 1}, column {mark.column + 1}" if mark else source
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        raise ConfigError(f"YAML {'error' if isinstance(exc, _MarkedProblem) else 'syntax error'} in {where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML error in {source}: {' '.join(str(exc).split())[:300]}") from None
    except RecursionError:
        raise ConfigError(f"{source} is nested too deeply to read") from None
    except ValueError as exc:  # Python refuses to read an integer of more than 4300 digits
        detail = "an integer has too many digits" if "digits" in str(exc) else " ".join(str(exc).split())[:200]
        raise ConfigError(f"{source}: a value cannot be read: {detail}") from None
    finally:
        loader.dispose()


class _Dumper(yaml.SafeDumper):
    """The safe dumper quoting a text that YAML 1.1 or 1.2 would read as something else ('0o17', '1e3'
    are numbers to autokd's reader, 'yes' a boolean to a YAML 1.1 one)."""


_Dumper.yaml_implicit_resolvers = {
    first: [*yaml.SafeDumper.yaml_implicit_resolvers.get(first, []), *_Loader.yaml_implicit_resolvers.get(first, [])]
    for first in {*yaml.SafeDumper.yaml_implicit_resolvers, *_Loader.yaml_implicit_resolvers}
}


def dump_yaml(data: Any) -> str:
    """Plain block-style YAML, keys in the order given, read back as written."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)


def load_yaml_value(text: str, source: str = "<text>") -> Any:
    """Any YAML value (a scalar from the command line, or text autokd wrote itself), checked like a file."""
    return _load(text, source)
