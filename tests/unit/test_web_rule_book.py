"""The desk links every rule id a message cites to the rule book it serves at /rules (issue #22 §9)."""

from pathlib import Path

from services.web.rules_text import reason_html, rule_book_html, rule_links

ROOT = Path(__file__).resolve().parents[2]


def test_a_message_links_each_rule_it_cites_and_escapes_the_rest():
    html = str(rule_links("a Senior Officer finishes <it>: send the required request (R-RQ7)"))
    assert html == ('a Senior Officer finishes &lt;it&gt;: send the required request'
                    ' (<a href="/rules#R-RQ7" class="rule">R-RQ7</a>)')


def test_a_reason_with_a_place_to_fix_it_links_there_and_to_its_rule_without_nesting_links():
    html = str(reason_html("the REQUIRED request 'X' must be sent and completed (R-RQ3)", "#requests"))
    assert html == ("<a href=\"#requests\">the REQUIRED request &#39;X&#39; must be sent and completed</a>"
                    ' (<a href="/rules#R-RQ3" class="rule">R-RQ3</a>)')


def test_the_rule_book_page_anchors_every_rule_by_its_id_in_govuk_typography():
    book = str(rule_book_html(ROOT / "docs" / "rules.md"))
    for rule in ("R-P1", "R-RQ7", "R-T6", "R-K1"):
        assert f'<li id="{rule}">' in book, rule
    assert '<h2 class="govuk-heading-m">' in book and '<table class="govuk-table' in book  # GOV.UK typography
