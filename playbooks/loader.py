"""Loading playbooks and the resource catalogue from YAML, with every problem tied to a line.

A file is checked in three passes and all their problems are reported together, so an author
fixes a file in one round: YAML syntax (and duplicate keys, which PyYAML would silently
collapse), the schema of :mod:`playbooks.schema`, then the cross-checks against the catalogue.
The first pass is bounded by :mod:`playbooks.limits` (see :mod:`playbooks.bounded_yaml`): a
document over a limit stops there, with one problem. Errors are raised as one
:class:`PlaybookError` whose ``problems`` read like compiler output::

    flood.yaml:14: requests[2].resource: unknown resource 'swift-water-rescue' (did you mean: ...)
"""

from __future__ import annotations

import codecs
import difflib
import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from playbooks.bounded_yaml import DocumentRefused, DocumentTooLarge, compose
from playbooks.limits import LIMITS, YamlLimits
from playbooks.schema import SKIP_DUPLICATE_CHECK, SLUG_PATTERN, Catalogue, Playbook

__all__ = [
    "PlaybookError",
    "PlaybookTooLarge",
    "Problem",
    "check_paths",
    "load_catalogue",
    "load_playbook",
    "load_stock_playbooks",
    "parse_playbook",
    "stock_dir",
]

_PACKAGE_DIR = Path(__file__).parent
_CATALOGUE_FILE = "resources.yaml"

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file, located as precisely as the YAML allows."""

    source: str
    line: int | None
    location: str
    message: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        if self.location:
            return f"{where}: {self.location}: {self.message}"
        return f"{where}: {self.message}"


class PlaybookError(ValueError):
    """A playbook or catalogue file is invalid; ``problems`` lists everything found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


class PlaybookTooLarge(PlaybookError):
    """The document is over the byte limit of :mod:`playbooks.limits`; it was not parsed."""


# --- public API ---------------------------------------------------------------------------------


def load_catalogue(path: Path | None = None) -> Catalogue:
    """Load and validate a resource catalogue; the packaged one when ``path`` is None.

    The packaged catalogue is read once per process and shared: it is data shipped with the
    code, so it cannot change while the process runs.
    """
    if path is None:
        return _packaged_catalogue()
    return _parse_catalogue(_read(path, LIMITS), str(path))


def parse_playbook(
    text: str, source: str, catalogue: Catalogue, *, limits: YamlLimits = LIMITS
) -> Playbook:
    """Parse and check one playbook; ``source`` names it in problems (usually its path).

    Raises :class:`PlaybookError` listing every problem found (:class:`PlaybookTooLarge`
    when the text is over ``limits.max_bytes``). The parse is bounded by ``limits``.
    """
    playbook, problems = _check_playbook(text, source, catalogue, None, limits)
    if playbook is None or problems:
        raise PlaybookError(problems)
    return playbook


def load_playbook(path: Path, catalogue: Catalogue, *, limits: YamlLimits = LIMITS) -> Playbook:
    """Load one playbook file; its ``incident_type`` must equal the file name's stem.

    Raises :class:`PlaybookError` listing every problem found, or :class:`OSError` if the file
    cannot be read. A file over ``limits.max_bytes`` is refused after reading just past it.
    """
    text = _read(path, limits)
    playbook, problems = _check_playbook(text, str(path), catalogue, path.stem, limits)
    if playbook is None or problems:
        raise PlaybookError(problems)
    return playbook


def stock_dir() -> Path:
    """The directory of the playbooks shipped with aidmesh, one ``<incident_type>.yaml`` each."""
    return _PACKAGE_DIR / "stock"


def load_stock_playbooks(catalogue: Catalogue | None = None) -> dict[str, Playbook]:
    """Every stock playbook keyed by incident type; one error lists the problems of all files.

    Checked against the packaged catalogue (``catalogue`` None or that one), they are read
    once per process and shared, as the catalogue is: they ship with the code and cannot
    change while it runs (and playbooks are frozen). Each call gets a dict of its own.
    """
    if catalogue is None or catalogue is _packaged_catalogue():
        return dict(_packaged_stock())
    return _stock_playbooks(catalogue)


@functools.lru_cache(maxsize=1)
def _packaged_stock() -> dict[str, Playbook]:
    return _stock_playbooks(_packaged_catalogue())


def _stock_playbooks(catalogue: Catalogue) -> dict[str, Playbook]:
    playbooks, problems = check_paths([stock_dir()], catalogue)
    if problems:
        raise PlaybookError(problems)
    return {playbook.incident_type: playbook for playbook in playbooks}


def check_paths(
    paths: Sequence[Path], catalogue: Catalogue, *, limits: YamlLimits = LIMITS
) -> tuple[list[Playbook], list[Problem]]:
    """Check playbook files and directories (every ``*.yaml`` in them), never raising.

    Returns the playbooks that loaded and the problems of those that did not, in path order.
    A missing path or a directory without playbooks is a problem too, so a mistyped argument
    cannot pass as "nothing wrong".
    """
    playbooks: list[Playbook] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            files = sorted(path.glob("*.yaml"))
            if not files:
                problems.append(Problem(str(path), None, "", "no *.yaml playbooks in directory"))
        elif path.exists():
            files = [path]
        else:
            problems.append(Problem(str(path), None, "", "no such file or directory"))
            continue
        for file in files:
            try:
                playbooks.append(load_playbook(file, catalogue, limits=limits))
            except PlaybookError as exc:
                problems.extend(exc.problems)
            except OSError as exc:
                problems.append(Problem(str(file), None, "", f"cannot read: {exc.strerror or exc}"))
    return playbooks, problems


# --- playbooks ----------------------------------------------------------------------------------


def _check_playbook(
    text: str, source: str, catalogue: Catalogue, expected_type: str | None, limits: YamlLimits
) -> tuple[Playbook | None, list[Problem]]:
    document = _Document.parse(text, source, limits)
    if document.root is None:
        return None, document.problems
    problems = list(document.problems)
    playbook: Playbook | None = None
    try:
        playbook = Playbook.model_validate(document.data)
    except ValidationError as exc:
        problems.extend(document.validation_problems(exc, Playbook))
    reported = {problem.location for problem in problems}
    problems.extend(
        problem
        for problem in _catalogue_problems(document, catalogue)
        if problem.location not in reported
    )
    if expected_type is not None:
        problems.extend(_incident_type_problems(document, expected_type))
    problems.sort(key=lambda problem: problem.line or 0)
    return (None if problems else playbook), problems


def _catalogue_problems(document: _Document, catalogue: Catalogue) -> Iterator[Problem]:
    """Every requested resource is catalogued, and each is requested at most once.

    Runs on the raw data, so these problems are found even when the schema pass failed.
    Catalogue entries always have a known kind: :class:`Catalogue` validates it.
    """
    requests = document.data.get("requests")
    if not isinstance(requests, list):
        return
    first_request: dict[str, Loc] = {}
    for index, request in enumerate(requests):
        resource = request.get("resource") if isinstance(request, dict) else None
        if not isinstance(resource, str):
            continue
        loc: Loc = ("requests", index, "resource")
        if resource not in catalogue:
            yield document.problem(loc, _unknown_resource_message(resource, catalogue))
        elif resource in first_request:
            first = first_request[resource]
            yield document.problem(
                loc,
                f"duplicate resource {resource!r}, already requested at {_dotted(first[:2])} "
                f"(line {document.line_of(first)}); raise it once with the total quantity",
            )
        else:
            first_request[resource] = loc


def _unknown_resource_message(resource: str, catalogue: Catalogue) -> str:
    matches = catalogue.close_matches(resource)
    hint = f"did you mean: {', '.join(matches)}?" if matches else "not in the resource catalogue"
    return f"unknown resource {resource!r} ({hint})"


def _incident_type_problems(document: _Document, expected_type: str) -> Iterator[Problem]:
    incident_type = document.data.get("incident_type")
    if isinstance(incident_type, str) and incident_type != expected_type:
        yield document.problem(
            ("incident_type",),
            f"incident type {incident_type!r} does not match the file name; "
            f"name the file {incident_type}.yaml or set incident_type: {expected_type}",
        )


# --- the catalogue ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _packaged_catalogue() -> Catalogue:
    path = _PACKAGE_DIR / _CATALOGUE_FILE
    return _parse_catalogue(_read(path, LIMITS), str(path))


def _parse_catalogue(text: str, source: str) -> Catalogue:
    document = _Document.parse(text, source, LIMITS)
    if document.root is None:
        raise PlaybookError(document.problems)
    problems = [*document.problems, *_duplicate_id_problems(document)]
    catalogue: Catalogue | None = None
    try:
        catalogue = Catalogue.model_validate(document.data, context={SKIP_DUPLICATE_CHECK: True})
    except ValidationError as exc:
        problems.extend(document.validation_problems(exc, Catalogue))
    if catalogue is None or problems:
        raise PlaybookError(sorted(problems, key=lambda problem: problem.line or 0))
    return catalogue


def _duplicate_id_problems(document: _Document) -> Iterator[Problem]:
    resources = document.data.get("resources")
    if not isinstance(resources, list):
        return
    first_index: dict[str, int] = {}
    for index, resource in enumerate(resources):
        resource_id = resource.get("id") if isinstance(resource, dict) else None
        if not isinstance(resource_id, str):
            continue
        if resource_id in first_index:
            first_line = document.line_of(("resources", first_index[resource_id], "id"))
            yield document.problem(
                ("resources", index, "id"),
                f"duplicate resource id {resource_id!r} (first at line {first_line})",
            )
        else:
            first_index[resource_id] = index


# --- YAML with lines ----------------------------------------------------------------------------


@dataclass
class _Document:
    """A parsed YAML mapping together with its node tree, to find the line of any location.

    ``root`` is None when the text is not a YAML mapping at all; ``problems`` then says why.
    Otherwise ``problems`` holds what the YAML pass found that later passes can still look past
    (duplicate keys).
    """

    source: str
    root: yaml.Node | None
    data: dict[str, Any]
    problems: list[Problem]

    @classmethod
    def parse(cls, text: str, source: str, limits: YamlLimits) -> _Document:
        """Raises :class:`PlaybookTooLarge` for text over the byte limit."""

        def failed(line: int | None, message: str) -> _Document:
            return cls(source, None, {}, [Problem(source, line, "", message)])

        try:
            root = compose(text, limits)
            data = _construct(root) if root is not None else None
        except DocumentTooLarge as exc:
            raise PlaybookTooLarge([Problem(source, None, "", exc.message)]) from None
        except DocumentRefused as exc:
            return failed(exc.line, exc.message)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            return failed(mark.line + 1 if mark else None, f"invalid YAML: {_yaml_reason(exc)}")
        except yaml.reader.ReaderError as exc:
            # A character YAML does not allow (NUL, other controls): name it and its line.
            line = text.count("\n", 0, exc.position) + 1
            return failed(line, f"invalid YAML: {_unacceptable(exc)}")
        except yaml.YAMLError as exc:
            return failed(None, f"invalid YAML: {exc}")
        if root is None:
            return failed(None, "the file is empty; expected a mapping of keys")
        if not isinstance(data, dict):
            return failed(
                root.start_mark.line + 1,
                f"expected a mapping of keys at the top level, got {_yaml_type(data)}",
            )
        document = cls(source, root, data, [])
        document.problems.extend(document._duplicate_key_problems(root, ()))
        return document

    def line_of(self, loc: Loc) -> int | None:
        """The line of the deepest node on ``loc`` that exists in the file (1-based).

        A mapping entry is placed on its key, a sequence item on the item itself. A location
        that is not in the file (a missing key) falls back to its nearest existing parent.
        """
        node = self.root
        line = None if node is None else node.start_mark.line + 1
        for part in loc:
            key_node, node = _child(node, part)
            if node is None:
                break
            line = (key_node or node).start_mark.line + 1
        return line

    def problem(self, loc: Loc, message: str) -> Problem:
        return Problem(self.source, self.line_of(loc), _dotted(loc), message)

    def validation_problems(
        self, exc: ValidationError, model: type[BaseModel]
    ) -> Iterator[Problem]:
        for error in exc.errors(include_url=False):
            loc = error["loc"]
            if error["type"] == "invalid_key":
                # pydantic puts the offending key itself last, as if it were a list index.
                loc = loc[:-1]
            yield self.problem(loc, _error_message(error, model))

    def _duplicate_key_problems(self, node: yaml.Node, loc: Loc) -> Iterator[Problem]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in seen:
                    yield Problem(
                        self.source,
                        key_node.start_mark.line + 1,
                        _dotted((*loc, key)),
                        f"duplicate key {key!r} (first at line {seen[key]}); "
                        "YAML would keep only the last value",
                    )
                seen.setdefault(key, key_node.start_mark.line + 1)
                yield from self._duplicate_key_problems(value_node, (*loc, key))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                yield from self._duplicate_key_problems(item, (*loc, index))


def _construct(root: yaml.Node) -> Any:
    """Build Python data from a composed node tree, exactly as ``yaml.safe_load`` would.

    The tree is bounded (:mod:`playbooks.bounded_yaml`), and the constructor builds nested
    collections from a work list rather than by recursion.
    """
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(root)
    finally:
        loader.dispose()


def _child(node: yaml.Node | None, part: str | int) -> tuple[yaml.Node | None, yaml.Node | None]:
    """``(key node, value node)`` of one step into a mapping or sequence, Nones if absent."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                return key_node, value_node
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return None, node.value[part]
    return None, None


def _yaml_reason(exc: yaml.MarkedYAMLError) -> str:
    reasons = [reason for reason in (exc.context, exc.problem) if reason]
    return ", ".join(reasons) or "cannot parse"


def _unacceptable(exc: yaml.reader.ReaderError) -> str:
    character: object = exc.character  # the code point, or a byte of undecodable input
    code = ord(character) if isinstance(character, str) else character
    return f"unacceptable character #x{code:04x}: {exc.reason}"


def _yaml_type(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


# --- messages -----------------------------------------------------------------------------------


def _dotted(loc: Loc) -> str:
    """``("requests", 2, "resource")`` -> ``requests[2].resource``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _error_message(error: ErrorDetails, model: type[BaseModel]) -> str:
    kind, loc, value = error["type"], error["loc"], error["input"]
    if kind == "extra_forbidden":
        return _unknown_key_message(str(loc[-1]), _keys_at(model, loc[:-1]))
    if kind == "invalid_key":
        return (
            f"key {value!r} is not a string (YAML reads unquoted on, off, yes and no "
            "as true or false); quote it"
        )
    if kind == "missing":
        return f"missing required key {loc[-1]!r}" if loc else "missing required key"
    ctx = error.get("ctx") or {}
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == SLUG_PATTERN:
        message = "expected a lowercase slug such as 'generator-100kw'"
    else:
        message = error["msg"].removeprefix("Value error, ")
    if kind.startswith("duration"):
        return message  # already quotes the value
    if isinstance(value, str | int | float | bool) or value is None:
        return f"{message} (got {_short_repr(value)})"
    return message


def _unknown_key_message(key: str, allowed: list[str]) -> str:
    if not allowed:
        return f"unknown key {key!r}"
    matches = difflib.get_close_matches(key, allowed, n=3)
    if matches:
        return f"unknown key {key!r} (did you mean: {', '.join(matches)}?)"
    return f"unknown key {key!r} (expected one of: {', '.join(allowed)})"


def _keys_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys the schema allows at ``loc``, following model fields and list items."""
    target: Any = model
    for part in loc:
        if isinstance(part, int):
            args = get_args(target)
            target = args[0] if get_origin(target) is list and args else None
        elif isinstance(target, type) and issubclass(target, BaseModel):
            field = target.model_fields.get(part)
            target = field.annotation if field else None
        else:
            return []
    if isinstance(target, type) and issubclass(target, BaseModel):
        return list(target.model_fields)
    return []


def _short_repr(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read(path: Path, limits: YamlLimits) -> str:
    """A file's text; a file over the byte limit, or not UTF-8, is a problem, not a crash.

    Reads at most one byte past the limit, so a huge file (or a device) costs nothing.
    """
    with path.open("rb") as file:
        data = file.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        size = max(path.stat().st_size, len(data))
        message = f"the file is {size:,} bytes; playbooks are limited to {limits.max_bytes:,} bytes"
        raise PlaybookTooLarge([Problem(str(path), None, "", message)])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        message = f"not valid UTF-8 text{_encoding_hint(data)}; save it as UTF-8"
        raise PlaybookError([Problem(str(path), line, "", message)]) from None


def _encoding_hint(data: bytes) -> str:
    """What a byte order mark says the text is instead (UTF-32's marks begin like UTF-16's)."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return " (it is UTF-32)"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return " (it is UTF-16)"
    return ""
