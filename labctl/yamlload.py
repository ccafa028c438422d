"""The one YAML loader labctl uses for every file it reads (topology, inventory/, locks, its own roles).

A SafeLoader that also bounds what a document can make labctl allocate: the text's size, and the
size the document has once every alias is expanded (a "billion laughs" file is a few hundred bytes
that PyYAML parses into shared objects, which json.dumps or Ansible then expand to gigabytes). A
recursive alias (a list that holds itself) is refused too. A key given twice in one mapping is an
error (PyYAML keeps the last one silently). Every refusal is one LabError naming the source."""

from __future__ import annotations

from typing import Any

import yaml

from labctl.errors import LabError, printable

MAX_BYTES = 4 * 1024 * 1024  # a topology, a lock or a vars file is kilobytes
MAX_NODES = 200_000  # scalars, lists and mappings once aliases are expanded (a 4 MiB file of plain YAML has fewer)


class Refused(LabError):
    """A YAML text labctl does not read: `problem` says why without the source or the fix (for callers
    that word their own message, e.g. a damaged lock)."""

    def __init__(self, source: str, problem: str, fix: str) -> None:
        super().__init__(f"{source}: {problem}. Fix: {fix}.")
        self.problem = problem


class DuplicateKey(yaml.constructor.ConstructorError):
    pass


class _Bomb(yaml.YAMLError):
    """The document expands (through aliases) to more nodes than MAX_NODES, or holds itself."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def expanded_size(root: yaml.Node, limit: int = MAX_NODES) -> int:
    """How many nodes the document has with every alias expanded (a node reached twice counts twice);
    raises _Bomb past limit or on a node that contains itself. Iterative: no recursion on deep input."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > limit:
                raise _Bomb(
                    f"the document holds more than {limit} values once its aliases (*name) are expanded",
                    "make it smaller: an alias of a value that holds aliases multiplies",
                )
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise _Bomb("an alias (*name) refers to a value that contains it", "remove the recursive alias")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return sizes[id(root)]


class _BoundedLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping, and a document whose aliases
    expand past MAX_NODES (checked on the composed node graph, before any Python object is built)."""

    max_nodes = MAX_NODES

    def construct_document(self, node: yaml.Node) -> Any:
        expanded_size(node, self.max_nodes)
        return super().construct_document(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # '<<: *anchor' merges; keys given here override merged ones on purpose
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # unhashable key: SafeLoader reports it
            if first is not None:
                raise DuplicateKey(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r} (first given on line {first.start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


def _error(source: str, exc: yaml.YAMLError) -> Refused:
    """One paragraph from PyYAML's multi-line message: where, what, and the fix."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    what = printable(": ".join(str(p) for p in parts if p) or str(exc))
    if isinstance(exc, _Bomb):
        return Refused(source, f"refused: {what}", exc.fix)
    fix = "keep each key once in a mapping" if isinstance(exc, DuplicateKey) else "correct the YAML syntax"
    return Refused(source, f"not valid YAML{where}: {what}", fix)


def load(text: str | bytes, source: str, max_bytes: int = MAX_BYTES, max_nodes: int = MAX_NODES) -> Any:
    """Parse one YAML document (None for an empty one) within labctl's bounds; one LabError naming
    source (a file's path, or e.g. "state.json field 'topology'") for anything else."""
    shown = printable(source)
    size = len(text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text)
    if size > max_bytes:
        raise Refused(
            shown, f"{size} bytes of YAML, more than labctl reads ({max_bytes})", "pass the file labctl expects"
        )
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)  # reads the first characters: may raise already
        loader.max_nodes = max_nodes
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise _error(shown, exc) from None
    except RecursionError:
        raise Refused(shown, "the YAML is nested too deeply", "write it as the README shows") from None
    finally:
        if loader is not None:
            loader.dispose()
