"""How an error message quotes a producer's input (`schemas.envelope`): every character shown as sent.

`_escaped` takes a shortcut for text with nothing to escape; whatever the text, it must give what
escaping one character at a time gives (the reference below, the rule as the module states it).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from schemas.envelope import _escaped, printable

SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def one_at_a_time(text: str, limit: int, quoting: bool) -> tuple[str, bool]:
    out, used = "", 0
    for ch in text:
        if (quoting and ch in SHORT) or ch in "\n\r\t":
            piece = SHORT[ch]
        elif ch.isprintable():
            piece = ch
        elif ord(ch) > 0xFFFF:
            high, low = divmod(ord(ch) - 0x10000, 0x400)
            piece = f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}"
        else:
            piece = f"\\u{ord(ch):04x}"
        if used + len(piece) > limit:
            return out, True
        out += piece
        used += len(piece)
    return out, False


# Mostly printable text, as producers send, with now and then what must be escaped.
texts = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from('"\\\n\r\t\x00\x1b\u202e\u200b\ud800\U0001f600é'),
        st.characters(min_codepoint=0x20, max_codepoint=0x7E),
    ),
    max_size=80,
)


@given(texts, st.integers(min_value=-2, max_value=90), st.booleans())
def test_escaping_gives_what_one_character_at_a_time_gives(text: str, limit: int, quoting: bool) -> None:
    assert _escaped(text, limit, quoting) == one_at_a_time(text, limit, quoting)


def test_printable_text_is_itself_and_cut_with_an_ellipsis() -> None:
    assert printable("dataset loans v2", 60) == "dataset loans v2"
    assert printable("x" * 100, 10) == "x" * 9 + "…"
    assert printable('say "hi"\tthere', 60) == 'say "hi"\\tthere'
