"""The lifecycle vocabulary reaches the pages from the domain, and no script restates it.

`restatements` reads every script in service/web/static for literal lists, sets and maps
that spell out a vocabulary group (the priority order, the severities, the final request
statuses, ...) or a claim's next moves; the broken snippets below prove it bites. The
shell's data block is checked to carry exactly what service/web/vocabulary.py builds.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.domain.lifecycles import FINAL_REQUEST_STATUSES, PRIORITY_ORDER, ClaimStatus
from service.web.pages import PAGES
from service.web.routes import STATIC_DIR, _data_block, router
from service.web.vocabulary import vocabulary

# A run of literal tokens: strings, numbers, object keys and the punctuation between them.
# Anything else (an identifier, an operator, a call) ends the run.
_TOKEN = re.compile(
    r"""(?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')"""
    r"""|(?P<key>[A-Za-z_$][\w$]*)\s*:(?!:)"""
    r"""|(?P<filler>[\s,:\[\]{}()]+|-?\d[\d_.]*)"""
    r"""|(?P<other>//[^\n]*|/\*[\s\S]*?\*/|`(?:[^`\\]|\\.)*`|[\s\S])"""
)


def literal_runs(source: str) -> list[set[str]]:
    """The words of every run of literals in `source`: string contents and key names."""
    runs: list[set[str]] = []
    words: set[str] = set()
    for match in _TOKEN.finditer(source):
        if match.lastgroup == "string":
            words.add(match.group("string")[1:-1])
        elif match.lastgroup == "key":
            words.add(match.group("key"))
        elif match.lastgroup == "other":
            if words:
                runs.append(words)
            words = set()
    if words:
        runs.append(words)
    return runs


def vocabulary_groups() -> dict[str, set[str]]:
    """Each list of the served vocabulary of three or more words: fewer is no restatement."""
    groups = {
        name: set(values)
        for name, values in vocabulary().items()
        if isinstance(values, list) and len(values) >= 3
    }
    assert {"priorities", "severities", "final_request_statuses", "ended_claim_statuses"} <= set(
        groups
    )
    return groups


def _moves_pattern() -> re.Pattern[str]:
    """A claim status as a key whose value lists another claim status: a table of moves."""
    statuses = "|".join(status.value for status in ClaimStatus)
    return re.compile(rf"""\b(?:{statuses})\s*:\s*[\[{{(]\s*\[?\s*["'](?:{statuses})["']""")


def restatements(source: str) -> list[str]:
    """What `source` restates of the vocabulary, in words; empty when nothing."""
    found = []
    groups = vocabulary_groups()
    for words in literal_runs(source):
        for name, group in groups.items():
            if group <= words:
                found.append(f"{name}: {sorted(group)}")
    found.extend(f"claim moves: {m.group(0)}" for m in _moves_pattern().finditer(source))
    return found


def test_no_script_restates_the_vocabulary() -> None:
    scripts = sorted(STATIC_DIR.glob("*.js"))
    assert len(scripts) >= 10, scripts
    found = {path.name: restatements(path.read_text()) for path in scripts}
    assert {name: what for name, what in found.items() if what} == {}


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("const PRIORITY_RANK = { critical: 0, high: 1, normal: 2, low: 3 };", "priorities"),
        ("const rank = (p) => ['critical', 'high', 'normal', 'low'].indexOf(p);", "priorities"),
        ('const FINAL = new Set(["fulfilled", "cancelled", "expired"]);', "final_request_statuses"),
        ('["expired", "cancelled",\n  "fulfilled"].includes(r.status)', "final_request_statuses"),
        ('const ENDED = new Set(["withdrawn", "declined", "expired"]);', "ended_claim_statuses"),
        ('SEVERITIES = ["minor", "moderate", "severe", "extreme"]', "severities"),
        ('{ claimed: [], accepted: [["en_route", "En route"]] }', "claim moves"),
        ('const NEXT = { on_site: ["released"] };', "claim moves"),
    ],
)
def test_the_check_finds_a_restated_vocabulary(snippet: str, expected: str) -> None:
    assert any(line.startswith(f"{expected}:") for line in restatements(snippet)), snippet


@pytest.mark.parametrize(
    "snippet",
    [
        'const WORDING = { partially_claimed: "Partly claimed" };',
        'if (request.priority === "critical" && request.status !== "fulfilled") return;',
        # Three of the four priorities are not the priority order.
        'const picked = ["critical", "high", "normal"];',
        # A call between the words ends the run: these are separate expressions.
        'f("minor"); g("moderate"); h("severe"); k("extreme");',
    ],
)
def test_the_check_leaves_single_words_and_part_lists_alone(snippet: str) -> None:
    assert restatements(snippet) == []


class _DataBlock(HTMLParser):
    """The text of <script id="aidmesh-shell">, and the src of every module script."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.text = ""
        self.modules: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script" and attributes.get("id") == "aidmesh-shell":
            assert attributes.get("type") == "application/json"
            self.inside = True
        elif tag == "script" and attributes.get("type") == "module":
            self.modules.append(attributes.get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        self.inside = False

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.text += data


def test_every_page_carries_the_domain_vocabulary_and_the_table_of_pages() -> None:
    app = FastAPI()
    app.include_router(router)
    client = TestClient(app)
    for page in PAGES:
        response = client.get(page.path)
        assert response.status_code == 200, page.path
        parser = _DataBlock()
        parser.feed(response.text)
        assert parser.modules == [f"/static/{page.module}"], page.path
        assert (STATIC_DIR / page.module).is_file(), page.module
        data = json.loads(parser.text)
        assert data["page"] == page.page_id
        assert data["pages"] == [p.public() for p in PAGES]
        assert data["vocabulary"] == vocabulary()


def test_the_vocabulary_follows_the_domain() -> None:
    served = vocabulary()
    assert served["priorities"] == list(PRIORITY_ORDER) == ["critical", "high", "normal", "low"]
    assert set(served["final_request_statuses"]) == {s.value for s in FINAL_REQUEST_STATUSES}
    moves = served["claim_moves"]
    # Information claims are answered, not dispatched: released straight from accepted.
    assert moves["information"]["accepted"]["responder"] == ["released", "withdrawn"]
    assert moves["personnel"]["accepted"]["responder"] == ["en_route", "withdrawn"]
    assert moves["personnel"]["claimed"]["requester"] == ["accepted", "declined"]
    assert "released" not in moves["personnel"]


def test_the_data_block_cannot_end_its_script_early() -> None:
    block = _data_block({"title": "</script><script>alert(1)</script> & more"})
    assert "<" not in block and ">" not in block and "&" not in block
    assert json.loads(block) == {"title": "</script><script>alert(1)</script> & more"}


def test_static_dir_holds_one_html_file_the_shell() -> None:
    assert [p.name for p in Path(STATIC_DIR).glob("*.html")] == ["shell.html"]
