"""yaml_loader's two entry points: `load_documents` (apply, the API: capped) and `iter_documents` (import:
streamed, any number of documents, the same per-document limits)."""

from __future__ import annotations

import io

import pytest

from controlplane.errors import ValidationError
from controlplane.resources.yaml_loader import (
    MAX_DEPTH,
    MAX_DOCUMENTS,
    MAX_EXPANDED_NODES,
    iter_documents,
    load_documents,
)

MESHES = "".join(f"---\ntype: Mesh\nname: m{i}\n" for i in range(MAX_DOCUMENTS + 500))


class CountingReader(io.TextIOBase):
    """A text stream that records how far it has been read (to show the loader does not slurp it)."""

    def __init__(self, text: str) -> None:
        self._text, self.position = text, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        end = len(self._text) if size is None or size < 0 else self.position + size
        chunk, self.position = self._text[self.position:end], min(end, len(self._text))
        return chunk


def test_apply_keeps_its_document_cap() -> None:
    with pytest.raises(ValidationError, match=f"more than {MAX_DOCUMENTS} documents"):
        load_documents(MESHES)


def test_a_stream_has_no_document_cap_and_matches_the_text_loader() -> None:
    streamed = list(iter_documents(io.StringIO(MESHES)))
    assert streamed == [{"type": "Mesh", "name": f"m{i}"} for i in range(MAX_DOCUMENTS + 500)]
    assert list(iter_documents(io.StringIO("---\n---\na: 1\n---\n"))) == load_documents("---\n---\na: 1\n---\n")


def test_documents_are_read_one_at_a_time() -> None:
    text = MESHES * 20  # ~800 kB
    reader = CountingReader(text)
    documents = iter_documents(reader)
    assert next(documents) == {"type": "Mesh", "name": "m0"}
    assert reader.position <= 64 * 1024 < len(text) // 10  # a chunk or a few (libyaml reads 16 KiB), not all


def big_plain_tree() -> str:
    """No aliases, just more values than the limit: the fast path must hand it to the full check."""
    return "a: [" + ", ".join("1" for _ in range(MAX_EXPANDED_NODES)) + "]\n"


@pytest.mark.parametrize(("text", "message"), [
    (big_plain_tree(), f"expands to more than {MAX_EXPANDED_NODES} values"),
    ("a: &a [1, 2]\nb: [*a, *a, *a]\n" + "c: [" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n",
     f"nested deeper than {MAX_DEPTH} levels"),
    ("name: &n [*n]\n", "recursive document"),
    ("type: Mesh\nname: [\n", "line 3, column 1: "),
], ids=["large-tree", "deep-with-aliases", "recursive", "syntax"])
def test_both_entry_points_apply_the_same_limits(text: str, message: str) -> None:
    with pytest.raises(ValidationError) as loaded:
        load_documents(text)
    with pytest.raises(ValidationError) as streamed:
        list(iter_documents(io.StringIO(text)))
    assert message in str(loaded.value)
    assert message in str(streamed.value)


def test_a_bad_document_stops_the_stream_where_it_is() -> None:
    documents = iter_documents(io.StringIO("---\na: 1\n---\nb: &x [*x]\n---\nc: 3\n"))
    assert next(documents) == {"a": 1}
    with pytest.raises(ValidationError, match="recursive document"):
        next(documents)


@pytest.mark.parametrize(("text", "message"), [
    ("type: Mesh\nname: a\nname: b\n", 'line 3, column 1: duplicate key "name" (first set on line 2)'),
    ("type: Dataplane\nnetworking:\n  inbound:\n  - port: 1\n    tags: {kuma.io/service: a, kuma.io/service: b}\n",
     'line 5, column 32: duplicate key "kuma.io/service" (first set on line 5)'),
    ("---\ntype: Mesh\nname: ok\n---\ntype: Mesh\ntracing: {}\ntracing: {}\n",
     'line 7, column 1: duplicate key "tracing" (first set on line 6)'),
    ("base: &b {x: 1}\nc:\n  <<: *b\n  y: 1\n  y: 2\n", 'line 5, column 3: duplicate key "y" (first set on line 4)'),
], ids=["top-level", "flow-mapping", "second-document", "beside-a-merge"])
def test_a_duplicate_key_is_an_error_naming_it(text: str, message: str) -> None:
    """PyYAML would keep the last value; both entry points refuse the document and name the key."""
    with pytest.raises(ValidationError) as loaded:
        load_documents(text)
    with pytest.raises(ValidationError) as streamed:
        list(iter_documents(io.StringIO(text)))
    assert str(loaded.value) == str(streamed.value) == f"invalid YAML: {message}"


def test_merged_keys_may_be_overridden() -> None:
    """`<<` merges defaults that the mapping's own keys override: that is YAML, not a duplicate."""
    text = "base: &b {x: 1, y: 1}\nc:\n  <<: *b\n  x: 2\n"
    expected = [{"base": {"x": 1, "y": 1}, "c": {"x": 2, "y": 1}}]
    assert load_documents(text) == list(iter_documents(io.StringIO(text))) == expected
