"""Reading XML from outside safely: a byte cap on the request stream, no DTD at all (so
no entity expansion and no external entity is ever fetched), and a nesting-depth cap.

Parsing is defusedxml's (a well-kept hardening of the standard library's expat
parser) rather than hand-made checks: it refuses DTDs, entity declarations and
external references before expat acts on them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from service.domain.errors import Invalid

MAX_BYTES = 1_000_000
MAX_DEPTH = 32


class TooLarge(Exception):
    """The body passed the byte cap (answered 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the XML document is larger than {limit} bytes")
        self.limit = limit


async def read_capped(stream: AsyncIterator[bytes], limit: int = MAX_BYTES) -> bytes:
    """At most `limit` bytes of a request body; TooLarge as soon as one more arrives."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise TooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


class _DepthCappedBuilder(ET.TreeBuilder):
    def __init__(self, max_depth: int) -> None:
        super().__init__()
        self._depth = 0
        self._max_depth = max_depth

    def start(self, tag: Any, attrs: Any) -> ET.Element:
        self._depth += 1
        if self._depth > self._max_depth:
            raise Invalid(f"the XML document nests deeper than {self._max_depth} elements")
        return super().start(tag, attrs)

    def end(self, tag: Any) -> ET.Element:
        self._depth -= 1
        return super().end(tag)


def parse(data: bytes, *, limit: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> ET.Element:
    """The root element of `data`, or Invalid saying why the document is refused."""
    if len(data) > limit:
        raise TooLarge(limit)
    parser = DefusedXMLParser(
        target=_DepthCappedBuilder(max_depth),
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )
    try:
        parser.feed(data)
        root: ET.Element = parser.close()
    except DefusedXmlException as exc:
        raise Invalid(f"the XML document is refused: {type(exc).__name__} ({exc})") from None
    except ET.ParseError as exc:
        raise Invalid(f"the XML document is not well-formed: {exc}") from None
    return root


def local(tag: str) -> str:
    """An element's name without its `{namespace}`."""
    return tag.rsplit("}", 1)[-1]


def child(element: ET.Element, name: str) -> ET.Element | None:
    """The first child named `name` (in any namespace)."""
    for found in element:
        if local(found.tag) == name:
            return found
    return None


def children(element: ET.Element, name: str) -> list[ET.Element]:
    return [found for found in element if local(found.tag) == name]


def text(element: ET.Element | None, *path: str) -> str | None:
    """The stripped text at `path` below `element` (any namespace), or None."""
    for name in path:
        if element is None:
            return None
        element = child(element, name)
    if element is None or element.text is None:
        return None
    return element.text.strip()
