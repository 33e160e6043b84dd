"""Characters that steer a display instead of being read: refused in payloads, written out at sinks.

ESC starts terminal escape sequences (colour, cursor moves, clearing a line), a carriage return or
line separator forges a line of a log or a table, and the bidirectional controls reorder what a
reader sees ("Trojan Source"). Lowest layer: the payload validators and `flows.text` share it.
"""

from __future__ import annotations

import unicodedata
from typing import Final

BIDI_CONTROLS: Final = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Controls (C0, DEL, C1), lone surrogates, line and paragraph separators.
_CATEGORIES: Final = frozenset({"Cc", "Cs", "Zl", "Zp"})


def is_control(ch: str) -> bool:
    """True for a character that steers a display (see above) instead of being read."""
    return ch in BIDI_CONTROLS or unicodedata.category(ch) in _CATEGORIES


def shown(ch: str) -> str:
    """The character written out as an escape: ESC as \\x1b, RIGHT-TO-LEFT OVERRIDE as \\u202e."""
    return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"


def first_control(text: str, allowed: str = "") -> tuple[int, str] | None:
    """The position and character of the first control in `text` not in `allowed`, if any."""
    return next(((i, ch) for i, ch in enumerate(text) if ch not in allowed and is_control(ch)), None)
