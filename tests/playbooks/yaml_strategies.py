"""Hypothesis strategies for bad playbook YAML: random nesting, aliases, scalars and tags.

Shared by the generated suites over the loader and CLI (tests/playbooks) and over the upload
route (tests/api). The documents are mostly invalid; some mutations of a valid playbook stay
valid, which is fine: what is asserted is "a playbook or a problem, quickly, never a crash".
"""

from __future__ import annotations

from hypothesis import strategies as st

from tests.playbooks.hostile import BASE

_OPEN_CLOSE = {"flow-list": ("[", "]"), "flow-map": ("{a: ", "}")}

_TAGS = [
    "!!python/object/apply:os.system",
    "!!python/name:builtins.eval",
    "!!binary",
    "!!set",
    "!!omap",
    "!!str",
    "!!int",
    "!!float",
    "!!timestamp",
    "!local",
    "!",
]

#: Pieces of YAML syntax, glued at random into mostly invalid text.
_TOKENS = [
    "[", "]", "{", "}", ",", ": ", "- ", "? ", "&a ", "*a", "&b ", "*b", "<<: ", "!!binary ",
    "!x ", "|\n", ">-\n", "'", '"', "\\", "#", "---\n", "...\n", "%YAML 1.1\n", "%TAG ! !x\n",
    "\n", "  ", "\t", "key", "1", "9" * 60, "0x", "1:2", ".inf", "~", "null", "yes", "\ufeff",
    "\x00", "\x85", "\u2028", "🌊",
]  # fmt: skip


def _plain_scalars() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(alphabet="0123456789", min_size=1, max_size=6000),
        st.builds(lambda n: "1" + "0" * n, st.integers(0, 6000)),
        st.builds(lambda n: "0x" + "f" * n, st.integers(1, 6000)),
        st.builds(lambda n: "1." + "9" * n + "e5", st.integers(1, 6000)),
        st.builds(lambda n: "x" * n, st.integers(0, 60_000)),
        st.sampled_from(["~", "yes", "no", "on", ".nan", "-.inf", "2026-02-12", "1:30", "<<"]),
        st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    )


def _scalars() -> st.SearchStrategy[str]:
    quoted = st.text(max_size=200).map(
        lambda s: '"' + s.replace("\\", "\\\\").replace('"', "'") + '"'
    )
    escapes = st.lists(
        st.sampled_from(["\\x41", "\\u263A", "\\n", "\\U0001F30A", "\\q"]), max_size=400
    )
    return st.one_of(
        _plain_scalars().map(lambda s: s.replace("\n", " ")),
        quoted,
        escapes.map(lambda parts: '"' + "".join(parts) + '"'),
        st.tuples(st.sampled_from(_TAGS), _plain_scalars()).map(lambda t: f"{t[0]} {t[1]}"),
    )


def _flow(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    keys = st.one_of(st.text(alphabet="abcdefgh<", min_size=1, max_size=4), _scalars())
    return st.one_of(
        st.lists(children, max_size=8).map(lambda items: "[" + ", ".join(items) + "]"),
        st.lists(st.tuples(keys, children), max_size=8).map(
            lambda pairs: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
        ),
        st.tuples(st.sampled_from(_TAGS), children).map(lambda t: f"{t[0]} {t[1]}"),
    )


@st.composite
def _nested(draw: st.DrawFn) -> str:
    """One value nested to a random depth, in a random style, sometimes left unclosed."""
    depth = draw(st.integers(1, 5000))
    style = draw(st.sampled_from(["flow-list", "flow-map", "block-list", "block-map", "mixed"]))
    leaf = draw(_scalars())
    if style == "block-list":
        return "- " * depth + leaf
    if style == "block-map":
        depth = min(depth, 600)  # indentation grows with depth: keep under the byte limit
        return "".join(f"{' ' * i}k{i}:\n" for i in range(depth)) + " " * depth + leaf
    if style == "mixed":
        opens = draw(st.lists(st.sampled_from(list(_OPEN_CLOSE)), min_size=depth, max_size=depth))
    else:
        opens = [style] * depth
    closed = draw(st.booleans())
    text = "".join(_OPEN_CLOSE[kind][0] for kind in opens) + leaf
    if closed:
        text += "".join(_OPEN_CLOSE[kind][1] for kind in reversed(opens))
    return f"requests: {text}"


@st.composite
def _aliases(draw: st.DrawFn) -> str:
    """Anchors that refer to earlier ones, the billion-laughs pattern at random sizes."""
    levels = draw(st.integers(1, 12))
    fan_out = draw(st.integers(1, 12))
    merge = draw(st.booleans())
    lines = [f"a0: &a0 [{', '.join([draw(_scalars())] * fan_out)}]"]
    for level in range(1, levels):
        refs = ", ".join([f"*a{draw(st.integers(0, level - 1))}"] * fan_out)
        if merge:
            lines.append(f"a{level}: &a{level} {{<<: *a{level - 1}, k{level}: [{refs}]}}")
        else:
            lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


def _mutated_base() -> st.SearchStrategy[str]:
    """The valid playbook with one line replaced by, or one fragment inserted at, random text."""
    lines = BASE.splitlines(keepends=True)
    fragment = st.one_of(_scalars(), _nested(), _aliases(), st.sampled_from(_TOKENS))

    def mutate(args: tuple[int, bool, str]) -> str:
        at, replace, text = args
        return "".join(lines[:at]) + text + "\n" + "".join(lines[at + int(replace) :])

    return st.tuples(st.integers(0, len(lines) - 1), st.booleans(), fragment).map(mutate)


def bad_playbooks() -> st.SearchStrategy[str]:
    """Mostly invalid playbook text, from every class of hostile input at random sizes."""
    trees = st.recursive(_scalars(), _flow, max_leaves=40).map(lambda value: f"requests: {value}")
    soup = st.lists(st.sampled_from(_TOKENS), max_size=200).map("".join)
    return st.one_of(_nested(), _aliases(), trees, soup, _mutated_base())
