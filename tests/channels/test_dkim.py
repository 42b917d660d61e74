"""Relaxed body canonicalisation: the same bytes as dkimpy's, for any body."""

from __future__ import annotations

from dkim.canonicalization import Relaxed
from hypothesis import given
from hypothesis import strategies as st

from postillon.channels.email.dkim import relaxed_body

_PIECES = st.sampled_from([b" ", b"\t", b"\r\n", b"a", b"=3D", b"  ", b"\r\n\r\n", b"x y"])


@given(st.lists(_PIECES, max_size=40).map(b"".join))
def test_relaxed_body_matches_dkimpy(body: bytes) -> None:
    assert relaxed_body(body) == Relaxed.canonicalize_body(body)


def test_examples() -> None:
    for body in (b"", b"\r\n", b"a \r\n\r\n", b"a\t b  \r\nc", b" \r\n", b"a\r\n \t\r\n"):
        assert relaxed_body(body) == Relaxed.canonicalize_body(body)
