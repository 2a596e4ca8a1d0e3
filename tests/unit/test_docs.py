"""The design lives in the repository and cannot drift from the code (issue #16).

docs/contracts.md is what `tools.contracts_doc` renders from the models, topics and endpoints;
every rule id the code, tests and docs cite is defined in docs/rules.md; nothing points outside
the repository for its design.
"""

import re
from collections import Counter
from pathlib import Path

from tools import contracts_doc

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs" / "rules.md"
RULE_ID = re.compile(r"\bR-[A-Z]+[0-9]+[a-z]?\b")
DEFINED = re.compile(r"^- \*\*(R-[A-Z]+[0-9]+[a-z]?) — ", re.MULTILINE)
CITING = ("services", "shared", "tests", "tessera", "tools", "bench", "deploy", "docs", "README.md")
TEXT = {".py", ".yaml", ".yml", ".md", ".html", ".sql", ".js", ".css", ".txt", ".toml", ".json", ".cfg", ".conf"}


def _text_files(*names: str) -> list[Path]:
    files = []
    for name in names:
        path = ROOT / name
        candidates = [path] if path.is_file() else path.rglob("*")
        files += [f for f in candidates if f.suffix in TEXT and f.is_file() and "__pycache__" not in f.parts]
    return files


def test_docs_contracts_is_what_the_models_topics_and_endpoints_say():
    """Change a command, event, topic or read endpoint and this fails until the page is regenerated."""
    current = contracts_doc.DOC.read_text()
    assert contracts_doc.render(current) == current, (
        f"docs/contracts.md differs from the code; run: {contracts_doc.WRITE_COMMAND}")


def test_the_contracts_page_shows_every_command_and_event_type():
    """Each message type of shared/commands and shared/events has its own section, under its topic."""
    page = contracts_doc.DOC.read_text()
    carried = contracts_doc.messages_by_topic()
    assert set(carried) == set(contracts_doc.topics.ALL)
    missing = sorted({m.TYPE for models in carried.values() for m in models if f"#### `{m.TYPE}`" not in page})
    assert missing == []


def test_every_rule_id_cited_in_code_tests_and_docs_is_defined_in_docs_rules():
    """A rule id that docs/rules.md does not define is a dangling reference: name where it is cited."""
    defined = set(DEFINED.findall(RULES.read_text()))
    undefined = sorted(
        f"{rule} ({path.relative_to(ROOT)}:{number})"
        for path in _text_files(*CITING) if path != RULES
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
        for rule in RULE_ID.findall(line) if rule not in defined
    )
    assert undefined == [], "define these in docs/rules.md (or correct the id):\n" + "\n".join(undefined)


def _rule_entries(text: str) -> list[tuple[str, str]]:
    """Each rule's list item: its id and its text, continuation lines (indented) included."""
    entries: list[tuple[str, str]] = []
    lines = text.splitlines()
    for number, line in enumerate(lines):
        found = DEFINED.match(line + " ")
        if found:
            body = [line]
            for later in lines[number + 1:]:
                if later and not later.startswith("  "):
                    break
                body.append(later)
            entries.append((found.group(1), " ".join(" ".join(body).split())))
    return entries


def test_each_rule_is_defined_once_and_names_where_it_comes_from():
    entries = _rule_entries(RULES.read_text())
    assert len(entries) == len(set(DEFINED.findall(RULES.read_text()))) > 0
    assert [rule for rule, n in Counter(rule for rule, _ in entries).items() if n > 1] == []
    unsourced = [rule for rule, body in entries if not re.search(r"\*[A-Z][^*]+\*$", body)]
    assert unsourced == [], "each rule ends with its source in italics: the guide and section, or why none"


def test_the_design_is_read_inside_the_repository():
    """A clone has no sibling folders: nothing points at one, or at design files the repository lacks."""
    outside = re.compile(r"\.\./shared|\b(?:ARCHITECTURE|CONTRACTS|DOMAIN|STYLE)\.md\b")
    found = sorted(f"{path.relative_to(ROOT)}:{number}"
                   for path in _text_files(*CITING, "Makefile", "pyproject.toml", "docker-compose.yml")
                   for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
                   if outside.search(line))
    assert found == [], "point these at docs/architecture.md, docs/contracts.md or docs/rules.md"


def test_every_docs_page_the_readme_names_exists():
    named = set(re.findall(r"docs/[\w./-]+\.md", (ROOT / "README.md").read_text()))
    assert named, "the README points at the design in docs/"
    assert sorted(n for n in named if not (ROOT / n).is_file()) == []


def test_no_two_test_files_share_a_name():
    """pytest imports test modules by basename (no __init__.py in tests/): two of one name stop the whole run."""
    names = [p.name for p in (Path(__file__).resolve().parents[1]).rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
