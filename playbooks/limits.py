"""How much YAML a playbook may be, checked while it is read, before anything is built from it.

A valid playbook is small: at most 20 requests and 20 checklists of 50 items, a few hundred
nodes, nesting five levels deep. The limits leave generous room above that and bound the work
any uploaded text can cost: the parse reads at most ``max_bytes`` and builds at most
``max_nodes`` nodes, none deeper than ``max_depth`` nor longer than ``max_scalar_chars``.
The same limits hold for uploads over REST and for ``aidmesh playbooks check``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LIMITS", "YamlLimits"]


@dataclass(frozen=True)
class YamlLimits:
    """The bounds one playbook document is parsed within."""

    #: UTF-8 bytes of the whole document; above it nothing is parsed (413 over REST). A
    #: stored playbook's column holds 200,000 characters, and no text has more than its bytes.
    max_bytes: int = 200_000
    #: Collections inside collections; a playbook needs five (checklists[].items[]).
    max_depth: int = 16
    #: Scalars, lists and mappings in the document, keys included.
    max_nodes: int = 5_000
    #: Characters in one scalar, key or value; the longest field (description) takes 1,000.
    max_scalar_chars: int = 10_000
    #: Characters in one number; Python refuses to convert integers of over 4,300 digits.
    max_number_chars: int = 32


#: The limits every playbook is parsed within, unless a caller passes its own.
LIMITS = YamlLimits()
