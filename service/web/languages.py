"""The pages' languages on the server's side, for the few pages the server words itself
(the end of a sign-in that could not finish): which language a request asks for, and its
messages from the same catalogues the browser reads (static/i18n-*.json, see i18n.js)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache

from service.web.routes import STATIC_DIR

# As i18n.js's LANGUAGES; the first is the one spoken when no other fits.
LANGUAGES = ("en", "de", "sw")
# Written by the pages' language switcher (i18n.js), so the server follows that choice too.
LANGUAGE_COOKIE = "aidmesh_lang"
# RFC 9110 12.4.2: a weight is 0 to 1 with at most three decimals.
_WEIGHT = re.compile(r"^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def choose_language(accept_language: str | None, chosen: str | None = None) -> str:
    """The language to answer in: `chosen` (the switcher's cookie) when aidmesh speaks it,
    else the most wanted of `accept_language` that it speaks ("de-AT" counts as "de"),
    else English. A malformed header, or part of one, is passed over, never an error."""
    if chosen in LANGUAGES:
        return chosen
    wanted: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept_language or "").split(",")):
        tag, *parameters = (part.strip() for part in item.split(";"))
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                value = value.strip()
                weight = float(value) if _WEIGHT.match(value) else 0.0
        base = tag.lower().split("-")[0]
        if weight > 0 and base in LANGUAGES:
            wanted.append((-weight, position, base))
    return min(wanted)[2] if wanted else LANGUAGES[0]


@cache
def _catalogue(language: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(
        (STATIC_DIR / f"i18n-{language}.json").read_text("utf-8")
    )
    return loaded


def message(language: str, key: str, params: Mapping[str, str] | None = None) -> str:
    """The message of `key` in `language` (English when that catalogue lacks it), its
    {name} placeholders filled from `params` as given. Plain text: escape it for HTML."""
    text = _catalogue(language).get(key, _catalogue(LANGUAGES[0])[key])
    if not isinstance(text, str):
        raise TypeError(f"{key} has plural forms; the server's messages have none")
    given = params or {}
    return _PLACEHOLDER.sub(lambda found: given.get(found[1], found[0]), text)
