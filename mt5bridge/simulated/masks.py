"""MT5 group masks: a comma list of patterns with ``*`` wildcards and ``!`` exclusions, read left to right."""

from __future__ import annotations

import re
from collections.abc import Callable


def _pattern(text: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if ch == "*" else re.escape(ch) for ch in text), re.IGNORECASE)


def group_matcher(mask: str) -> Callable[[str], bool]:
    """A predicate telling whether a group name is selected by ``mask``.

    Each pattern either adds the groups it matches or, with a leading ``!``, removes them, in
    order, so ``"*,!demo*"`` is every group but the demo ones and ``"demo*,!demo\\\\vip"``
    every demo group except ``demo\\vip``. Matching ignores case, as MT5 does.
    """
    rules = []
    for part in (mask or "").split(","):
        part = part.strip()
        if not part or part == "!":
            continue
        exclude = part.startswith("!")
        rules.append((not exclude, _pattern(part[1:] if exclude else part)))

    def matches(group: str) -> bool:
        selected = False
        for include, pattern in rules:
            if pattern.fullmatch(group):
                selected = include
        return selected

    return matches


def filter_groups(names: list[str], mask: str) -> list[str]:
    matches = group_matcher(mask)
    return [name for name in names if matches(name)]
