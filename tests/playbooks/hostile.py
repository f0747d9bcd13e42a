"""Hostile playbook documents, shared by the loader, CLI and upload tests.

Each is text an attacker (or a careless generator) could upload as a city playbook: too
big, too deep, too many nodes, aliases that expand exponentially, tags that name Python
objects, several documents, bytes that are not text. Every one must be refused with a
problem that says why, quickly, by the parse alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from playbooks import LIMITS

#: A valid city flood playbook against the packaged catalogue, which cases break.
BASE = """\
incident_type: flood
title: Nairobi River flood (city plan)
description: Nairobi's own flood plan, lighter than the stock one.
default_severity: severe
escalation:
  ring0_radius_km: 80
  ring_intervals: [15m, 1h]
claim_acceptance_timeout: 10m
requests:
  - resource: swift-water-rescue-team
    quantity: 3
    priority: critical
    needed_within: 2h
  - resource: hydrological-forecast
    quantity: 1
    priority: high
    needed_within: 1h
checklists:
  - title: Situation
    items: [River gauge levels, Roads closed]
"""


@dataclass(frozen=True)
class Hostile:
    name: str
    text: str
    #: A substring of the one problem the parse must report.
    message: str
    #: The answer to an upload over REST: 422, or 413 above the byte limit.
    status: int = 422


def billion_laughs(levels: int = 8) -> str:
    """Each line lists the previous one nine times: 9**levels strings from ~300 bytes."""
    lines = ["a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    for level in range(1, levels):
        prev, name = chr(ord("a") + level - 1), chr(ord("a") + level)
        lines.append(f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]")
    return "# lol\n" + "\n".join(lines)


def _nested_block_mapping(depth: int) -> str:
    return "".join(f"{' ' * level}k{level}:\n" for level in range(depth)) + " " * depth + "x\n"


def _many_aliases_to_one_large_anchor() -> str:
    items = ",".join(f"item{i}" for i in range(1000))
    aliases = "  - *big\n" * 2000
    return f"big: &big [{items}]\nrefs:\n{aliases}\n"


_DEPTH = f"nested deeper than {LIMITS.max_depth} levels"
_NODES = f"more than {LIMITS.max_nodes:,} YAML nodes"
_SCALAR = f"values are limited to {LIMITS.max_scalar_chars:,} characters"
_NUMBER = f"numbers are limited to {LIMITS.max_number_chars} characters"
_ALIAS = "anchors and aliases"
_TAG = "tags are not allowed"

HOSTILE: list[Hostile] = [
    # Numbers
    Hostile("number-5000-digits", BASE.replace("quantity: 3", "quantity: " + "9" * 5000), _NUMBER),
    Hostile(
        "float-5000-digits", BASE.replace("radius_km: 80", "radius_km: 8." + "1" * 5000), _NUMBER
    ),
    Hostile("hex-5000-digits", BASE.replace("quantity: 1", "quantity: 0x" + "f" * 5000), _NUMBER),
    Hostile(
        "sexagesimal-2000-parts",
        BASE.replace("quantity: 1", "quantity: " + "1:" * 2000 + "1"),
        _NUMBER,
    ),
    # Depth, in every style
    Hostile("block-list-5000-deep", "requests:\n" + "- " * 5000 + "x\n", _DEPTH),
    Hostile("flow-list-5000-deep", "requests: " + "[" * 5000 + "]" * 5000 + "\n", _DEPTH),
    Hostile(
        "flow-mapping-5000-deep", "requests: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n", _DEPTH
    ),
    Hostile("block-mapping-600-deep", _nested_block_mapping(600), _DEPTH),
    Hostile("unclosed-flow-list-50000-deep", "a: " + "[" * 50_000 + "\n", _DEPTH),
    # Breadth and size of scalars
    Hostile("19000-keys", "".join(f"k{i:05}: 1\n" for i in range(19_000)), _NODES),
    Hostile("60000-item-flow-list", "a: [" + ",".join(["x"] * 60_000) + "]\n", _NODES),
    Hostile("description-150k-chars", BASE.replace("Nairobi's own", "x" * 150_000), _SCALAR),
    Hostile(
        "quoted-escapes-45k-chars",
        BASE.replace(
            "Nairobi's own flood plan, lighter than the stock one.", '"' + "\\x41" * 45_000 + '"'
        ),
        _SCALAR,
    ),
    Hostile("explicit-key-100k-chars", BASE + "? " + "k" * 100_000 + "\n: 1\n", _SCALAR),
    # Aliases
    Hostile("billion-laughs-8-levels", billion_laughs(8), _ALIAS),
    Hostile("many-aliases-to-one-large-anchor", _many_aliases_to_one_large_anchor(), _ALIAS),
    Hostile(
        "one-harmless-anchor",
        BASE.replace("default_severity: severe", "default_severity: &s severe"),
        _ALIAS,
    ),
    Hostile("merge-key-with-alias", BASE + "base: &b {quantity: 1}\nother:\n  <<: *b\n", _ALIAS),
    # Merge keys and tags
    Hostile(
        "merge-key-inline",
        BASE.replace("  ring0_radius_km: 80", "  <<: {ring0_radius_km: 80}"),
        "merge key",
    ),
    Hostile(
        "python-object-apply", BASE + "x: !!python/object/apply:os.system [echo owned]\n", _TAG
    ),
    Hostile("python-name", BASE + "x: !!python/name:os.system\n", _TAG),
    Hostile("binary-tag", BASE.replace("title: Nairobi", "title: !!binary TmFpcm9iaQ== #"), _TAG),
    Hostile("set-tag", BASE + "x: !!set {a, b}\n", _TAG),
    Hostile(
        "local-tag", BASE.replace("default_severity: severe", "default_severity: !sev severe"), _TAG
    ),
    Hostile(
        "tag-directive", "%TAG !e! tag:example.com,2000:\n---\n" + BASE + "x: !e!thing 1\n", _TAG
    ),
    # Streams and text
    Hostile("two-documents", BASE + "---\n" + BASE, "one YAML document"),
    Hostile("ten-thousand-empty-documents", BASE + "---\n" * 10_000, "one YAML document"),
    Hostile("utf16-read-as-text", BASE.encode("utf-16").decode("latin-1"), "invalid YAML"),
    Hostile("nul-in-value", BASE.replace("Nairobi's", "Nairobi\x00s"), "invalid YAML"),
    Hostile("lone-surrogate", BASE.replace("Nairobi's", "Nairobi\ud800s"), "not valid Unicode"),
    # Size
    Hostile(
        "just-over-the-byte-limit",
        BASE + "#" * (LIMITS.max_bytes - len(BASE)) + "\n",
        f"limited to {LIMITS.max_bytes:,} bytes",
        413,
    ),
    Hostile(
        "5-megabytes",
        BASE + ("# " + "x" * 98 + "\n") * 50_000,
        f"limited to {LIMITS.max_bytes:,} bytes",
        413,
    ),
    Hostile(
        "multibyte-over-the-byte-limit",
        BASE + "# " + "🌊" * (LIMITS.max_bytes // 4) + "\n",
        f"limited to {LIMITS.max_bytes:,} bytes",
        413,
    ),
]

BY_NAME = {hostile.name: hostile for hostile in HOSTILE}
