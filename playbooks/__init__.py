"""Playbooks: what to ask for when an incident of a given type is declared.

A playbook is a YAML file per incident type (``stock/flood.yaml``, ...) naming the requests to
raise on declaration, the escalation schedule and the claim timeout. Every requested resource
comes from the resource catalogue (``resources.yaml``), so cities mean the same thing by the
same word. :mod:`playbooks.schema` holds the format, :mod:`playbooks.loader` reads and checks
files, reporting every problem with its line, and :mod:`playbooks.limits` bounds what any text
(an upload, a file) can cost to parse.
"""

from playbooks.durations import format_duration, parse_duration
from playbooks.limits import LIMITS, YamlLimits
from playbooks.loader import (
    PlaybookError,
    PlaybookTooLarge,
    Problem,
    check_paths,
    load_catalogue,
    load_playbook,
    load_stock_playbooks,
    parse_playbook,
    stock_dir,
)
from playbooks.schema import (
    Catalogue,
    Checklist,
    Escalation,
    Playbook,
    PlaybookRequest,
    Priority,
    Resource,
    ResourceKind,
    Severity,
)

__all__ = [
    "LIMITS",
    "Catalogue",
    "Checklist",
    "Escalation",
    "Playbook",
    "PlaybookError",
    "PlaybookRequest",
    "PlaybookTooLarge",
    "Priority",
    "Problem",
    "Resource",
    "ResourceKind",
    "Severity",
    "YamlLimits",
    "check_paths",
    "format_duration",
    "load_catalogue",
    "load_playbook",
    "load_stock_playbooks",
    "parse_duration",
    "parse_playbook",
    "stock_dir",
]
