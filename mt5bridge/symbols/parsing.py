"""Taking one broker symbol name apart: prefix, stem, suffix, canonical base and category."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .tables import (
    ALIAS_TO_BASE,
    BASE_CATEGORY,
    COIN_ALIASES,
    CRYPTO,
    CRYPTO_COINS,
    CRYPTO_QUOTES,
    CURRENCIES,
    DESCRIPTION_HINTS,
    FOREX,
    LOWER_SUFFIX_CHARS,
    MAX_STEM,
    METAL_CODES,
    METALS,
    OTHER,
    PATH_HINTS,
    SUFFIX_WORDS,
    TRAILING_LOWER,
)

# --- Parsing ---


@dataclass(frozen=True)
class Parsed:
    stem: str
    prefix: str
    suffix: str
    category: str | None  # None: not in the tables
    canonical: str | None


def leading_prefix(name: str) -> str:
    end = 0
    while end < len(name) and not name[end].isalnum():
        end += 1
    return name[:end]


def currency_pair(stem: str) -> tuple[str, str] | None:
    """Category and canonical base of a pair-shaped name (EURUSD, XAGEUR, XBTUSD, ETHUSDT)."""
    if not (stem.isascii() and stem.isalpha() and stem.isupper()):
        return None
    if len(stem) == 6:
        first, second = stem[:3], stem[3:]
        if first in CURRENCIES and second in CURRENCIES and first != second:
            return FOREX, stem
        if first in METAL_CODES and second in CURRENCIES:
            return METALS, stem
    for quote in CRYPTO_QUOTES:
        if stem.endswith(quote) and len(stem) > len(quote):
            coin = stem[: -len(quote)]
            coin = COIN_ALIASES.get(coin, coin)
            if coin in CRYPTO_COINS and coin != quote:
                return CRYPTO, coin + quote
    return None


def _lookup(stem: str) -> tuple[str, str] | None:
    base = ALIAS_TO_BASE.get(stem)
    if base is not None:
        return BASE_CATEGORY[base], base
    return currency_pair(stem)


def _is_suffix(rest: str) -> bool:
    if not rest:
        return True
    if not rest[0].isalnum():  # separator first: .raw -ECN _i + #
        return True
    if "a" <= rest[0] <= "z":  # glued lower case: m, c, pro, ecn, micro
        return len(rest) <= 8 and all(ch in LOWER_SUFFIX_CHARS for ch in rest)
    # Glued capitals only for known words, or "GEMINI" would read as GE + "MINI".
    return rest.upper() in SUFFIX_WORDS


def _match_known(core: str) -> tuple[str, str, str, str] | None:
    """Longest known stem at the start of ``core`` followed by something suffix-like."""
    limit = min(len(core), MAX_STEM)
    # Exact case first, so GOOG + "l" is not read as GOOGL.
    best: tuple[int, int, str, str, str, str] | None = None
    for length in range(limit, 0, -1):
        stem, rest = core[:length], core[length:]
        hit = _lookup(stem)
        if hit is None or not _is_suffix(rest):
            continue
        # A clean cut beats a longer stem: BTCUSDCash is BTCUSD + Cash, not BTCUSDC + "ash".
        quality = 0 if not rest or not rest[0].isalnum() else 1 if rest.upper() in SUFFIX_WORDS else 2
        candidate = (quality, -length, stem, rest, hit[0], hit[1])
        if best is None or candidate < best:
            best = candidate
    if best is not None:
        return best[2], best[3], best[4], best[5]
    # Then any case (Bitcoin, Gold), but only with nothing or a separator after it.
    for length in range(limit, 0, -1):
        rest = core[length:]
        if rest and rest[0].isalnum():
            continue
        stem = core[:length].upper()
        hit = _lookup(stem)
        if hit is not None:
            return stem, rest, hit[0], hit[1]
    return None


def parse_name(name: Any, suffixes: Iterable[str] = ()) -> Parsed | None:
    if not isinstance(name, str):
        return None
    name = name.strip()
    prefix = leading_prefix(name)
    core = name[len(prefix) :]
    if not core:
        return None
    known = _match_known(core)
    if known is not None:
        stem, suffix, category, canonical = known
        return Parsed(stem, prefix, suffix, category, canonical)
    for suffix in sorted({s for s in suffixes if s}, key=lambda s: (-len(s), s)):
        head = core[: -len(suffix)]
        if core.endswith(suffix) and head and head[-1].isalnum():
            return Parsed(head.upper(), prefix, suffix, None, None)
    for index, char in enumerate(core):
        if not char.isalnum():
            return Parsed(core[:index].upper(), prefix, core[index:], None, None)
    for word in SUFFIX_WORDS:
        tail = core[-len(word) :]
        if len(core) > len(word) and tail.upper() == word and tail[0].isupper() and tail[1:].islower():
            return Parsed(core[: -len(word)].upper(), prefix, tail, None, None)
    glued = TRAILING_LOWER.fullmatch(core)
    if glued is not None:
        return Parsed(glued.group(1), prefix, glued.group(2), None, None)
    return Parsed(core.upper(), prefix, "", None, None)


def split_affixes(name: str, suffixes: Iterable[str] = ()) -> tuple[str, str, str] | None:
    """``(stem, prefix, suffix)`` for any name, known or not; None when it has no letters or digits.

    Known stems are matched first; otherwise one of ``suffixes`` (e.g. the broker's dominant suffix) is cut
    off, else the name is cut at its first separator, else a glued capitalised suffix word (``Cash``) or a
    trailing lower-case run (``m``) is the suffix.
    """
    parsed = parse_name(name, suffixes)
    if parsed is None:
        return None
    return parsed.stem, parsed.prefix, parsed.suffix


def normalize_base(name: str) -> tuple[str, str, str] | None:
    """``(stem, prefix, suffix)`` when the name is a known symbol, e.g. ``#US30.cash`` -> ``("US30", "#", ".cash")``.

    The stem is the broker's spelling (``GOLD``); ``canonical_base`` turns it into ``XAUUSD``.
    """
    parsed = parse_name(name)
    if parsed is None or parsed.category is None:
        return None
    return parsed.stem, parsed.prefix, parsed.suffix


def canonical_base(name: str) -> str | None:
    """The canonical base of a known name or alias (``GOLDm`` -> ``XAUUSD``), else None."""
    parsed = parse_name(name)
    return parsed.canonical if parsed is not None else None


def category_of(base: str) -> str:
    """Category of a base, alias or affixed name; ``"other"`` when the tables do not know it."""
    parsed = parse_name(base)
    if parsed is None or parsed.category is None:
        return OTHER
    return parsed.category


def symbol_folder(path: str, name: str) -> str:
    """The folder part of an MT5 symbol path (``Forex\\Majors\\EURUSD.pro`` -> ``Forex\\Majors``)."""
    parts = [part for part in re.split(r"[\\/]+", path or "") if part]
    if parts and parts[-1] == name:
        parts.pop()
    return "\\".join(parts)


def path_category(path: str, name: str) -> str | None:
    # The innermost folder that says something wins: "Forex\Metals" holds metals.
    for part in reversed(symbol_folder(path, name).split("\\")):
        words = re.sub(r"[^a-z]+", " ", part.lower())
        for category, pattern in PATH_HINTS:
            if pattern.search(words):
                return category
    return None


def description_category(description: str) -> str | None:
    words = re.sub(r"[^a-z]+", " ", description.lower())
    for category, pattern in DESCRIPTION_HINTS:
        if pattern.search(words):
            return category
    return None
