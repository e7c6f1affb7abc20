"""The committed KPL vectors are what `aws-kinesis-agg` builds today (see kpl_vectors.py): a
change of the library's pinned version, of the script or of the file fails here."""

from __future__ import annotations

import json

import kpl_vectors


def test_the_committed_vectors_are_the_librarys() -> None:
    committed = kpl_vectors.VECTORS.read_text(encoding="utf-8")
    assert json.loads(committed) == json.loads(kpl_vectors.render()), "run: python tests/vectors/kpl_vectors.py"
    assert committed == kpl_vectors.render()


def test_every_kind_of_vector_is_there() -> None:
    kinds = [v["expected"] for v in kpl_vectors.vectors()]
    assert kinds.count("aggregate") >= 7
    assert kinds.count("plain") >= 5
    assert kinds.count("invalid") >= 5
