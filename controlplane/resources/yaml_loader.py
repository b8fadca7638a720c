"""Safe YAML loading with limits: documents per text, alias expansion, nesting depth; and unique keys.

PyYAML's `safe_load` keeps aliases as shared references, so a "billion laughs" document (anchors whose
lists repeat earlier anchors) loads small but becomes exponentially large as soon as anything walks it
(validation, `json.dumps` for the PUT). `LimitedLoader` therefore checks each composed document before
constructing any Python object: its size *with every alias expanded* (memoised per node, so the check itself
is linear in the document), its depth, and that no alias refers to a node that contains it (a recursive
document). The limits are far above anything a Kuma resource needs. Alternative rejected: forbidding
aliases outright; YAML users write anchors for repeated tags and the docs' YAML must apply unchanged.

Two entry points. `load_documents` (apply, the API) takes a whole text and caps the number of documents.
`iter_documents` (import) streams a file of any size document by document: only the current document is
in memory, each one is checked the same way, and there is no count cap, because a restore must take
whatever `export` wrote. It parses with libyaml when PyYAML has it (about five times faster, which is most
of a 100k-resource import) and with the same constructor and checks, so both accept the same documents.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from typing import IO, Any, Final

import yaml

from controlplane.errors import ValidationError, Violation

MAX_DOCUMENTS: Final = 1000
MAX_EXPANDED_NODES: Final = 100_000
MAX_DEPTH: Final = 64
INVALID_YAML: Final = "Invalid YAML"
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"


def _rejected(message: str) -> ValidationError:
    return ValidationError([Violation("", f"invalid YAML: {message}")], INVALID_YAML)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def check_node_graph(root: yaml.Node) -> None:
    """Raise ValidationError if the document, aliases expanded, is too large, too deep or recursive."""
    if _plain_tree_within_limits(root):
        return
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()  # nodes being expanded: in an iterative DFS, exactly the current ancestors
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            kids = _children(node)
            size[key] = 1 + sum(size[id(kid)] for kid in kids)
            depth[key] = 1 + max((depth[id(kid)] for kid in kids), default=0)
            on_path.discard(key)
            if size[key] > MAX_EXPANDED_NODES:
                raise _rejected(f"the document expands to more than {MAX_EXPANDED_NODES} values "
                                "(too many aliases, or too large)")
            if depth[key] > MAX_DEPTH:
                raise _rejected(f"the document is nested deeper than {MAX_DEPTH} levels")
            continue
        if key in size:
            continue
        if key in on_path:
            raise _rejected("an alias refers to a node that contains it (recursive document)")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((kid, False) for kid in _children(node) if id(kid) not in size)


def _plain_tree_within_limits(root: yaml.Node) -> bool:
    """The common case in one cheap pass: a document without aliases is a tree, so its expanded size is
    its node count and it cannot be recursive. False when a collection is reached twice (an alias) or a
    limit is crossed; the memoised walk above then decides, and words the error. Halves the cost of
    loading a large export (most of which is this check otherwise)."""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    count = 0
    while stack:
        node, level = stack.pop()
        count += 1
        if count > MAX_EXPANDED_NODES or level > MAX_DEPTH:
            return False
        if isinstance(node, yaml.ScalarNode):
            continue
        if id(node) in seen:
            return False
        seen.add(id(node))
        stack.extend((kid, level + 1) for kid in _children(node))
    return True


class LimitedLoader(yaml.SafeLoader):
    def construct_document(self, node: yaml.Node) -> object:
        check_node_graph(node)
        return super().construct_document(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        """YAML says the keys of a mapping are unique. PyYAML keeps the last of two equal keys, kumactl's
        reader (sigs.k8s.io/yaml, not strict) an undefined one; either way an edit is silently lost, so the
        document is refused, naming the key. Keys merged in with `<<` may be overridden, as YAML says."""
        own = [key_node for key_node, _ in node.value if key_node.tag != _MERGE_TAG]
        merges = len(own) != len(node.value)
        mapping = super().construct_mapping(node, deep=deep)
        if merges or len(mapping) != len(own):  # cheap test first: without merges, fewer entries = a duplicate
            self._refuse_duplicate_keys(node, own)
        return mapping

    def _refuse_duplicate_keys(self, node: yaml.MappingNode, own: list[yaml.Node]) -> None:
        first: dict[Hashable, yaml.Node] = {}
        for key_node in own:
            key = self.construct_object(key_node)  # already constructed: the constructor's cache answers
            if key in first:
                shown = json.dumps(key) if isinstance(key, str) else repr(key)
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"duplicate key {shown} (first set on line {first[key].start_mark.line + 1})",
                    key_node.start_mark,
                )
            first[key] = key_node


_StreamLoader: type[LimitedLoader] = LimitedLoader
if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _LibyamlLoader(CParser, LimitedLoader):
        """libyaml's parser (first in the MRO), LimitedLoader's constructor and so its checks."""

        def __init__(self, stream: IO[str]) -> None:
            CParser.__init__(self, stream)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    _StreamLoader = _LibyamlLoader


def load_documents(text: str) -> list[object]:
    """Every non-empty document; ValidationError (line and column for syntax errors) otherwise."""
    documents: list[object] = []
    with _yaml_errors():
        for document in yaml.load_all(text, Loader=LimitedLoader):  # a SafeLoader subclass: no arbitrary tags
            if document is None:
                continue
            documents.append(document)
            if len(documents) > MAX_DOCUMENTS:
                raise _rejected(f"more than {MAX_DOCUMENTS} documents; split the input into several applies")
    return documents


def iter_documents(stream: IO[str]) -> Iterator[object]:
    """Every non-empty document of `stream`, one at a time; ValidationError as `load_documents` raises,
    at the document where the problem is (the ones before it have been yielded)."""
    with _yaml_errors():
        for document in yaml.load_all(stream, Loader=_StreamLoader):
            if document is not None:
                yield document


@contextmanager
def _yaml_errors() -> Iterator[None]:
    try:
        yield
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise _rejected(f"{where}{exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise _rejected(str(exc)) from exc
    except RecursionError:  # the composer recurses per nesting level, before our depth check sees the node
        raise _rejected(f"the document is nested deeper than {MAX_DEPTH} levels") from None
