"""YAML text to a node tree within :mod:`playbooks.limits`, refusing what playbooks never need.

PyYAML's safe loader guards against running code, not against size: its composer recurses
once per nesting level (a 5,000-deep list overflows the stack), it builds scalars of any
length and numbers of any number of digits, and whoever walks its tree walks every alias
again (eight levels of nine aliases are 43 million nodes from 300 bytes). So the tree is
composed here instead, from PyYAML's event stream, which is flat: each event is checked as
it arrives and the first one over a limit stops the parse. The tree is the one
``yaml.compose`` would build, so the loader maps problems to lines as before.

Anchors and aliases are refused outright rather than bounded: a playbook is a short list
written out in full, and an alias would also put every problem found in the aliased value
on the anchor's line rather than where it is used. Tags (``!!python/object``, ``!!binary``,
``!local``) and merge keys (``<<``) are refused for the same reason: plain values are all a
playbook holds. A stream of several documents is refused at the second one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn, cast

import yaml

from playbooks.limits import LIMITS, YamlLimits

__all__ = ["DocumentRefused", "DocumentTooLarge", "compose"]

_YAML_TAG_PREFIX = "tag:yaml.org,2002:"
_MERGE_TAG = _YAML_TAG_PREFIX + "merge"
_NUMBER_TAGS = {_YAML_TAG_PREFIX + "int", _YAML_TAG_PREFIX + "float"}

Collection = yaml.SequenceNode | yaml.MappingNode


class DocumentRefused(Exception):
    """The text is over a limit or uses YAML playbooks refuse; ``line`` is 1-based or None."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class DocumentTooLarge(DocumentRefused):
    """The text is over ``max_bytes``: refused before it is parsed at all."""


def compose(text: str, limits: YamlLimits = LIMITS) -> yaml.Node | None:
    """The node tree of the one document in ``text``; None if it holds none.

    Raises :class:`DocumentRefused` (or :class:`DocumentTooLarge`) for text over a limit or
    using what playbooks refuse, and ``yaml.YAMLError`` for text that is not YAML.
    """
    _check_text(text, limits)
    loader = yaml.SafeLoader(text)
    composer = _Composer(loader, limits)
    try:
        while loader.check_event():
            composer.feed(loader.get_event())  # type: ignore[no-untyped-call]
    finally:
        loader.dispose()
    return composer.root


def _check_text(text: str, limits: YamlLimits) -> None:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        raise DocumentTooLarge(
            None,
            f"the playbook is {size:,} bytes; playbooks are limited to {limits.max_bytes:,} bytes",
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        # A lone surrogate: JSON can carry one as "\ud800", no file can.
        raise DocumentRefused(
            text.count("\n", 0, exc.start) + 1,
            f"not valid Unicode text: a lone surrogate (U+{ord(text[exc.start]):04X})",
        ) from None


@dataclass
class _Open:
    """A collection being composed; a mapping holds its key until the value arrives."""

    node: Collection
    key: yaml.Node | None = None


class _Composer:
    """Builds the tree from events, one bounded step per event, without recursion."""

    def __init__(self, resolver: yaml.resolver.BaseResolver, limits: YamlLimits) -> None:
        self._resolver = resolver
        self._limits = limits
        self._open: list[_Open] = []
        self._nodes = 0
        self._documents = 0
        self.root: yaml.Node | None = None

    def feed(self, event: yaml.Event) -> None:
        if isinstance(event, yaml.DocumentStartEvent):
            self._documents += 1
            if self._documents > 1:
                _refuse(event, "a second YAML document ('---'); a playbook is one YAML document")
        elif isinstance(event, yaml.AliasEvent):
            _refuse(event, f"alias '*{event.anchor}': {_NO_ANCHORS}")
        elif isinstance(event, yaml.ScalarEvent):
            self._check_node_event(event)
            self._add(self._scalar(event))
        elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            self._check_node_event(event)
            self._start(event)
        elif isinstance(event, yaml.CollectionEndEvent):
            self._open.pop().node.end_mark = _end_of(event)

    def _check_node_event(self, event: yaml.NodeEvent) -> None:
        if event.anchor is not None:
            _refuse(event, f"anchor '&{event.anchor}': {_NO_ANCHORS}")
        tag: str | None = getattr(event, "tag", None)
        if tag is not None:
            if tag.startswith(_YAML_TAG_PREFIX):
                tag = "!!" + tag.removeprefix(_YAML_TAG_PREFIX)
            _refuse(event, f"tag '{tag}': tags are not allowed in playbooks; write plain values")

    def _scalar(self, event: yaml.ScalarEvent) -> yaml.ScalarNode:
        value, limits = event.value, self._limits
        if len(value) > limits.max_scalar_chars:
            _refuse(
                event,
                f"a value of {len(value):,} characters; values are limited to "
                f"{limits.max_scalar_chars:,} characters",
            )
        tag = self._resolve(yaml.ScalarNode, value, event.implicit)
        if tag in _NUMBER_TAGS and len(value) > limits.max_number_chars:
            _refuse(
                event,
                f"a number of {len(value):,} characters; numbers are limited to "
                f"{limits.max_number_chars} characters (quote it if it is text)",
            )
        if tag == _MERGE_TAG:
            _refuse(
                event,
                "'<<' merge keys are not allowed in playbooks; write each key out "
                "(quote '<<' if you mean the text)",
            )
        return yaml.ScalarNode(tag, value, _start_of(event), _end_of(event), event.style)

    def _start(self, event: yaml.SequenceStartEvent | yaml.MappingStartEvent) -> None:
        if len(self._open) >= self._limits.max_depth:
            depth = self._limits.max_depth
            _refuse(event, f"nested deeper than {depth} levels of lists and mappings")
        node: Collection
        if isinstance(event, yaml.SequenceStartEvent):
            tag = self._resolve(yaml.SequenceNode, None, event.implicit)
            node = yaml.SequenceNode(tag, [], _start_of(event), None, event.flow_style)
        else:
            tag = self._resolve(yaml.MappingNode, None, event.implicit)
            node = yaml.MappingNode(tag, [], _start_of(event), None, event.flow_style)
        self._add(node)
        self._open.append(_Open(node))

    def _resolve(self, kind: type[yaml.Node], value: str | None, implicit: Any) -> str:
        tag: str = self._resolver.resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        return tag

    def _add(self, node: yaml.Node) -> None:
        self._nodes += 1
        if self._nodes > self._limits.max_nodes:
            raise DocumentRefused(
                node.start_mark.line + 1,
                f"more than {self._limits.max_nodes:,} YAML nodes (keys, values and list "
                "items); a playbook needs a few hundred",
            )
        if not self._open:
            self.root = node
            return
        parent = self._open[-1]
        if isinstance(parent.node, yaml.SequenceNode):
            parent.node.value.append(node)
        elif parent.key is None:
            parent.key = node
        else:
            parent.node.value.append((parent.key, node))
            parent.key = None


_NO_ANCHORS = "anchors and aliases are not allowed in playbooks; write each value out in full"


def _refuse(event: yaml.Event, message: str) -> NoReturn:
    raise DocumentRefused(_start_of(event).line + 1, message)


# The pure-Python parser marks every event; the stubs allow for libyaml's marks and for none.
def _start_of(event: yaml.Event) -> yaml.Mark:
    return cast(yaml.Mark, event.start_mark)


def _end_of(event: yaml.Event) -> yaml.Mark:
    return cast(yaml.Mark, event.end_mark)
