"""Anchors: the audit log's head (seq, hash, keyed_from) published outside the database it protects.

An anchor carries its own HMAC with the audit key, so whoever can write the anchors' topic but lacks
the key cannot plant anchors that would make a genuine log look rewritten (or hide a rewrite).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from connectors.register.audit import jcs

_ANCHOR_DOMAIN = b"aims.audit.anchor.v1\n"


@dataclass(frozen=True)
class Anchor:
    seq: int
    head: str  # the hash (HMAC) of entry `seq`
    keyed_from: int | None
    at: str  # ISO-8601 UTC time it was published

    def tag(self, key: bytes) -> str:
        return hmac.new(key, _ANCHOR_DOMAIN + jcs(asdict(self)).encode(), hashlib.sha256).hexdigest()

    def seal(self, key: bytes) -> bytes:
        """The record value published: the anchor's fields and its tag, as JSON."""
        return jcs({**asdict(self), "tag": self.tag(key)}).encode()


def open_anchor(value: bytes, key: bytes) -> Anchor | None:
    """The anchor in a published record; None unless it parses and its tag was made with `key`."""
    try:
        doc: Any = json.loads(value)
        anchor = Anchor(
            seq=int(doc["seq"]), head=str(doc["head"]), keyed_from=doc.get("keyed_from"), at=str(doc["at"])
        )
        tag = str(doc["tag"])
    except (ValueError, KeyError, TypeError):
        return None
    if anchor.keyed_from is not None and not isinstance(anchor.keyed_from, int):
        return None
    return anchor if hmac.compare_digest(anchor.tag(key), tag) else None


@dataclass
class AnchorSet:
    """The anchors read back, by seq; the newest one's keyed_from; how many were refused."""

    by_seq: dict[int, Anchor]
    keyed_from: int | None = None
    rejected: int = 0
    source: str = ""

    @classmethod
    def of(cls, anchors: Iterable[Anchor], rejected: int = 0, source: str = "") -> AnchorSet:
        by_seq: dict[int, Anchor] = {}
        newest: Anchor | None = None
        for anchor in anchors:
            by_seq.setdefault(anchor.seq, anchor)
            # The newest anchor that states keyed_from (anchors given by hand on the CLI do not).
            if anchor.keyed_from is not None and (newest is None or anchor.seq >= newest.seq):
                newest = anchor
        return cls(by_seq, newest.keyed_from if newest else None, rejected, source)
