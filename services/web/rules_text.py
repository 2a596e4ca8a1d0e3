"""The rule book, docs/rules.md, read for the desk (issue #22 §9): every rule id a message names links to its rule
at /rules. A small reading of the file's own Markdown: headings, paragraphs, tables and one list item per rule."""

import re
from functools import cache
from pathlib import Path

from markupsafe import Markup, escape

RULE_ID = re.compile(r"\bR-[A-Z]{1,3}[0-9]{1,2}\b")
RULE_ITEM = re.compile(r"^- \*\*(?P<id>R-[A-Z]{1,3}[0-9]{1,2})\b")


def rule_links(text: str | None) -> Markup:
    """A message with each rule id it names linked to that rule in the rule book, the rest escaped."""
    html = str(escape(text or ""))
    return Markup(RULE_ID.sub(lambda m: f'<a href="/rules#{m.group(0)}" class="rule">{m.group(0)}</a>', html))


def reason_html(text: str | None, href: str | None = None) -> Markup:
    """A reason as the desk lists it: linked to what fixes it when there is such a place (`href`), with each
    rule id it cites linked to the rule book (outside that link: links do not nest)."""
    if not href:
        return rule_links(text)
    ids = RULE_ID.findall(text or "")
    bare = re.sub(r"\s*\((?:" + "|".join(ids) + r")(?:,\s*)?\)", "", text or "") if ids else text or ""
    cited = ", ".join(f'<a href="/rules#{i}" class="rule">{i}</a>' for i in ids)
    return Markup(f'<a href="{escape(href)}">{escape(bare)}</a>' + (f" ({cited})" if cited else ""))


def inline(text: str) -> Markup:
    """Escaped text with `code`, **bold** and each rule id linked to its rule."""
    html = re.sub(r"`([^`]+)`", r"<code>\1</code>", str(rule_links(text)))
    return Markup(re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", html))


def _blocks(lines: list[str]) -> list[list[str]]:
    """Lines grouped into blocks: a blank line ends one, a list item or a heading starts one."""
    blocks: list[list[str]] = []
    for line in lines:
        starts = line.startswith(("- ", "#")) or (line.startswith("|") and not (blocks and blocks[-1]
                                                                                 and blocks[-1][0].startswith("|")))
        if not line.strip():
            blocks.append([])
        elif starts or not blocks:
            blocks.append([line])
        else:
            blocks[-1].append(line)
    return [b for b in blocks if b]


HEADINGS = {1: "govuk-heading-l", 2: "govuk-heading-m", 3: "govuk-heading-s"}  # issue #19 §4: GOV.UK typography


def _block_html(block: list[str]) -> str:
    first = block[0]
    if first.startswith("#"):
        level = len(first) - len(first.lstrip("#"))
        heading = HEADINGS.get(level, "govuk-heading-s")
        return f"<h{level} class=\"{heading}\">{inline(first.lstrip('#').strip())}</h{level}>"
    if first.startswith("|"):
        rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in block
                if not re.fullmatch(r"[|\s:-]+", line)]
        head, *body = rows
        return ("<table class=\"govuk-table work\"><thead class=\"govuk-table__head\"><tr class=\"govuk-table__row\">"
                + "".join(f"<th scope=\"col\" class=\"govuk-table__header\">{inline(c)}</th>" for c in head)
                + "</tr></thead><tbody class=\"govuk-table__body\">"
                + "".join("<tr class=\"govuk-table__row\">"
                          + "".join(f"<td class=\"govuk-table__cell\">{inline(c)}</td>" for c in row) + "</tr>"
                          for row in body) + "</tbody></table>")
    text = " ".join(line.strip() for line in block)
    if first.startswith("- "):
        rule = RULE_ITEM.match(first)
        anchor = f' id="{rule.group("id")}"' if rule else ""
        return f"<ul class=\"govuk-list govuk-list--bullet rules\"><li{anchor}>{inline(text[2:])}</li></ul>"
    return f"<p class=\"govuk-body\">{inline(text)}</p>"


@cache
def rule_book_html(path: Path) -> Markup:
    lines = path.read_text(encoding="utf-8").splitlines()
    return Markup("\n".join(_block_html(block) for block in _blocks(lines)))
