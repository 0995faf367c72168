"""MT5 group masks as MT5 writes them: one reading, shared by campaign targeting and the simulated server.

A mask is a comma list of patterns, e.g. ``real\\*,!real\\test*``. A pattern is a group path with ``\\`` between
its parts; ``*`` stands for any run of characters (backslashes included) and a leading ``!`` makes the pattern an
exclusion. Matching ignores case, as MT5 does.

The rule, read left to right: the last pattern that matches a group decides; an inclusion selects the group, an
exclusion removes it. A group no pattern matches is not selected, except that a mask made of exclusions only
(``!demo*``) starts from every group, as if it began with ``*``. An empty mask selects nothing. So the usual
MT5 spelling, inclusions first and exclusions after (``*,!demo*``), selects what matches an inclusion and no
exclusion, whatever the order within each part.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

# Characters that cannot be part of an MT5 group path (``/``: MT5 separates the parts of a path with ``\``).
_FORBIDDEN = frozenset('/?;"<>|')


class GroupMaskError(ValueError):
    """A mask MT5 would not read; the message says what is wrong and where."""


def _pattern(text: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if ch == "*" else re.escape(ch) for ch in text), re.IGNORECASE | re.DOTALL)


def mask_text(mask: str | Iterable[str] | None) -> str:
    """A mask as one comma list: a list of patterns (a campaign's target groups) joined in its order."""
    if mask is None:
        return ""
    if isinstance(mask, str):
        return mask
    return ",".join(mask)


def _parts(mask: str | Iterable[str] | None) -> list[str]:
    text = mask_text(mask)
    return [] if not text.strip() else [part.strip() for part in text.split(",")]


def mask_problems(mask: str | Iterable[str] | None) -> list[str]:
    """Why MT5 would not read ``mask`` (empty: it is well formed), one sentence per faulty pattern."""
    problems = []
    for number, part in enumerate(_parts(mask), start=1):
        where = f"Pattern {number} ({part!r})" if part else f"Pattern {number}"
        body = part[1:] if part.startswith("!") else part
        if not part:
            problems.append(f"{where} is empty: remove the extra comma.")
        elif not body or body.startswith("!"):
            problems.append(f"{where}: '!' must be followed by the group pattern to exclude, e.g. !demo*.")
        elif "/" in body:
            problems.append(f"{where}: MT5 separates group paths with a backslash, e.g. real\\*, not /.")
        elif any(ch in _FORBIDDEN or ord(ch) < 32 for ch in body):
            bad = sorted({ch for ch in body if ch in _FORBIDDEN or ord(ch) < 32})
            problems.append(f"{where} holds characters an MT5 group cannot have: {' '.join(map(repr, bad))}.")
        elif body.startswith("\\") or body.endswith("\\") or "\\\\" in body:
            problems.append(f"{where} has an empty path part: write real\\*, not real\\ or real\\\\pro.")
    return problems


def validate_group_mask(mask: str | Iterable[str] | None) -> None:
    """Raise `GroupMaskError` listing every faulty pattern of ``mask``."""
    problems = mask_problems(mask)
    if problems:
        raise GroupMaskError(" ".join(problems))


def group_matcher(mask: str | Iterable[str] | None) -> Callable[[str], bool]:
    """A predicate telling whether a group name is selected by ``mask`` (the rule in the module's docstring).

    Lenient: empty and faulty patterns are passed over (a mask from MT5 itself is used as it comes); forms and
    the API refuse them first with `validate_group_mask`.
    """
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for part in _parts(mask):
        exclude = part.startswith("!")
        body = part[1:].strip() if exclude else part
        if body:
            rules.append((not exclude, _pattern(body)))
    start = bool(rules) and not any(include for include, _ in rules)

    def matches(group: str) -> bool:
        selected = start
        for include, pattern in rules:
            if pattern.fullmatch(group):
                selected = include
        return selected

    return matches


def group_matches(group: str, mask: str | Iterable[str] | None) -> bool:
    return group_matcher(mask)(group)


def filter_groups(names: list[str], mask: str | Iterable[str] | None) -> list[str]:
    matches = group_matcher(mask)
    return [name for name in names if matches(name)]
