"""Referral text refuses control characters, lone surrogates and bidi overrides (the hostile-input rules of intake):
the compiled classes in shared/events/referrals.py refuse exactly what Unicode's categories Cc and Cs name."""

import unicodedata

import pytest

from shared.events.referrals import _multi_line, _single_line

BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def refused(check, value: str) -> bool:
    try:
        check(value)
    except Exception:
        return True
    return False


@pytest.mark.parametrize("plane_start", range(0, 0x10000, 0x1000))
def test_single_line_text_refuses_exactly_the_control_characters_surrogates_and_bidi_overrides(plane_start):
    for code in range(plane_start, plane_start + 0x1000):
        ch = chr(code)
        expected = unicodedata.category(ch) in ("Cc", "Cs") or ch in BIDI
        assert refused(_single_line, f"Ann{ch}e") == expected, hex(code)


def test_free_text_allows_tabs_and_line_breaks_but_not_a_bare_carriage_return_or_other_controls():
    assert not refused(_multi_line, "Lives alone.\r\nDaughter visits\tweekly.")
    assert refused(_multi_line, "Lives alone.\rDaughter visits.")
    assert refused(_multi_line, "Lives \x00alone.")
    assert refused(_multi_line, "Lives \u202ealone.")
