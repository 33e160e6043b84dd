"""File and folder names made from ids that arrive in events and HTTP requests (reviews, datasets).

Such ids are untrusted text: `..` named the state folder itself, and a slug alone (`a/b` → `a_b`)
gave two ids one folder, each overwriting the other's files. So:

- an id that is already a plain lowercase name (letters, digits, `.`, `_`, `-`, starting with a
  letter or digit, at most 64 characters) is its own name, so everyday names stay readable;
- any other id becomes a readable slug, `+`, and 16 hex digits of the SHA-256 of the exact id. A
  plain name has no `+`, so the two kinds never meet; two slugged ids share a name only if their
  hashes' first 64 bits agree. Lowercase plain names also keep ids apart on case-insensitive file
  systems (macOS, Windows): `Review-A` is slugged with its hash, never folded onto `review-a`;
- an id with nothing but dots (or nothing at all) names nothing and is refused.

Every name is one path component, never `.` or `..`, at most 81 characters.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

_PLAIN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SLUG_LENGTH = 64


def id_file_name(ident: str) -> str:
    """The one file or folder name of `ident`; ValueError for an id that is empty or only dots."""
    if not ident.strip("."):
        raise ValueError(f"{ident!r} cannot name a file: an id needs a character other than '.'")
    if _PLAIN.fullmatch(ident):
        return ident
    # The slug is for people reading the folder; the hash is what keeps ids apart. Dots, dashes and
    # underscores are trimmed at both ends, so a name never hides its file, never reads as `..` or
    # as a command's option, and does not lose a trailing dot on Windows.
    slug = _UNSAFE.sub("_", ident)[:_SLUG_LENGTH].strip("._-") or "id"
    # surrogatepass: a JSON string may carry a lone surrogate, and the hash must still see every id.
    digest = hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{slug}+{digest}"


def id_path(folder: Path, ident: str) -> Path:
    """`folder / id_file_name(ident)`, checked to be directly inside `folder`.

    The name alone cannot leave the folder; the check also refuses a name that already exists there
    as a link to elsewhere, which writing through would follow.
    """
    path = folder / id_file_name(ident)
    if path.resolve().parent != folder.resolve():
        raise ValueError(f"{ident!r} would name {path.resolve()}, outside {folder.resolve()}")
    return path
