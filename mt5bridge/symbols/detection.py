"""Detecting a broker's symbols and naming conventions from its symbol list: the broker's symbol map."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any

from .parsing import (
    Parsed,
    canonical_base,
    currency_pair,
    description_category,
    leading_prefix,
    parse_name,
    path_category,
    symbol_folder,
)
from .tables import CATEGORIES, OTHER, STOCKS
from .values import DetectedSymbol


@dataclass(frozen=True)
class BrokerSymbolMap:
    """What one broker offers: the preferred symbol per base, every variant, and the naming convention."""

    categories: dict[str, dict[str, DetectedSymbol]]  # category -> base -> preferred symbol
    variants: dict[str, tuple[DetectedSymbol, ...]]  # base -> all its symbols, preferred first
    dominant_prefix: dict[str, str]  # category -> prefix most of its symbols use
    dominant_suffix: dict[str, str]  # category -> suffix most of its symbols use
    unrecognised: tuple[str, ...] = ()  # names no table, path or description could place (sorted)

    @cached_property
    def _by_name(self) -> dict[str, DetectedSymbol]:
        return {d.full_symbol: d for group in self.variants.values() for d in group}

    @cached_property
    def _by_stem(self) -> dict[str, tuple[DetectedSymbol, ...]]:
        found: dict[str, list[DetectedSymbol]] = {}
        for group in self.variants.values():
            for d in group:
                found.setdefault(d.stem, []).append(d)
        return {stem: tuple(group) for stem, group in found.items()}

    def find(self, full_symbol: str) -> DetectedSymbol | None:
        """The symbol with exactly this broker name."""
        return self._by_name.get(full_symbol)

    def variants_of(self, base: str) -> tuple[DetectedSymbol, ...]:
        """Every symbol for a base (canonical, alias or affixed name), preferred first."""
        key = base.strip().upper()
        if key in self.variants:
            return self.variants[key]
        canonical = canonical_base(base)
        if canonical is not None and canonical in self.variants:
            return self.variants[canonical]
        parsed = parse_name(base)
        if parsed is not None and parsed.stem in self.variants:
            return self.variants[parsed.stem]
        return ()

    def get(self, base: str) -> DetectedSymbol | None:
        """The preferred symbol for a base, e.g. ``get("GOLD")`` -> the broker's ``XAUUSD.pro``."""
        found = self.variants_of(base)
        return found[0] if found else None

    def with_stem(self, stem: str) -> tuple[DetectedSymbol, ...]:
        """Symbols spelled with this stem (any affix), preferred first."""
        return self._by_stem.get(stem.strip().upper(), ())

    @property
    def symbols(self) -> tuple[DetectedSymbol, ...]:
        return tuple(sorted(self._by_name.values(), key=lambda d: d.full_symbol))

    def to_payload(self) -> dict[str, dict[str, dict[str, str]]]:
        """The pre-flight JSON shape: category -> base -> {base_symbol, full_symbol, suffix, description, path}.

        Empty categories are left out; ``path`` is the folder without the symbol's own name.
        """
        payload: dict[str, dict[str, dict[str, str]]] = {}
        for category in CATEGORIES:
            entries = self.categories.get(category) or {}
            if not entries:
                continue
            payload[category] = {
                base: {
                    "base_symbol": d.base_symbol,
                    "full_symbol": d.full_symbol,
                    "suffix": d.suffix,
                    "description": d.description,
                    "path": symbol_folder(d.path, d.full_symbol),
                }
                for base, d in sorted(entries.items())
            }
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> BrokerSymbolMap:
        """Rebuild a map from a stored payload; keys that are not categories (broker_info, ...) are ignored."""
        detected: list[DetectedSymbol] = []
        for category in CATEGORIES:
            entries = payload.get(category)
            if not isinstance(entries, Mapping):
                continue
            for base, entry in entries.items():
                if not isinstance(entry, Mapping) or not isinstance(entry.get("full_symbol"), str):
                    continue
                full = entry["full_symbol"]
                suffix = entry.get("suffix")
                if not isinstance(suffix, str) or not full.endswith(suffix):
                    parsed = parse_name(full)
                    suffix = parsed.suffix if parsed else ""
                head = full[: len(full) - len(suffix)]
                prefix = leading_prefix(head)
                detected.append(
                    DetectedSymbol(
                        base_symbol=str(entry.get("base_symbol") or base),
                        full_symbol=full,
                        prefix=prefix,
                        suffix=suffix,
                        category=category,
                        stem=head[len(prefix) :].upper(),
                        description=str(entry.get("description") or ""),
                        path=str(entry.get("path") or ""),
                        known=category != OTHER,
                    )
                )
        return _assemble(detected, unparsed=(), prefer_suffix=None)


# --- Detection ---


@dataclass(frozen=True)
class _Record:
    name: str
    path: str
    description: str
    contract_size: Decimal | None


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() and number > 0 else None


def _record(item: Any) -> _Record | None:
    if isinstance(item, str):
        return _Record(item.strip(), "", "", None)
    if isinstance(item, Mapping):
        get = item.get
    else:

        def get(key: str, default: Any = None) -> Any:
            return getattr(item, key, default)

    name = get("name")
    if not isinstance(name, str):
        return None
    size = get("contract_size")
    if size is None:
        size = get("trade_contract_size")  # the MetaTrader5 package's field name
    path, description = get("path", ""), get("description", "")
    return _Record(
        name.strip(),
        path if isinstance(path, str) else "",
        description if isinstance(description, str) else "",
        _decimal(size),
    )


def _convention(symbols: Iterable[DetectedSymbol]) -> tuple[str, str] | None:
    counts = Counter((d.prefix, d.suffix) for d in symbols)
    if not counts:
        return None
    # Ties go to the shorter affix (plain names first), then alphabetical, so the result never depends on order.
    return min(counts, key=lambda affix: (-counts[affix], len(affix[0]) + len(affix[1]), affix))


def _conventions(detected: list[DetectedSymbol]) -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for category in CATEGORIES:
        members = [d for d in detected if d.category == category]
        convention = _convention(d for d in members if d.known) or _convention(members)
        if convention is not None:
            found[category] = convention
    return found


def detect_symbols(
    symbols: Iterable[Any],
    *,
    prefer_suffix: str | Mapping[str, str] | None = None,
) -> BrokerSymbolMap:
    """Detect every symbol's base, affixes and category, and the broker's convention per category.

    ``symbols``: ``SymbolInfo`` objects, MetaTrader5 symbol records, mappings with ``name``/``path``/
    ``description``/``contract_size``, or plain names. ``prefer_suffix`` picks which variant is preferred
    when a base exists with several suffixes (one suffix for all categories, or per category); without it
    the dominant suffix wins.
    """
    records: dict[str, _Record] = {}
    for item in symbols:
        record = _record(item)
        if record is None or not record.name:
            continue
        # Sorted input plus "first wins" keeps duplicates from making the result order-dependent.
        current = records.get(record.name)
        if current is None or _record_key(record) < _record_key(current):
            records[record.name] = record

    detected: list[DetectedSymbol] = []
    unparsed: list[str] = []
    pending: list[tuple[_Record, str]] = []  # placed by hints only; parsed again once conventions are known
    for record in sorted(records.values(), key=_record_key):
        parsed = parse_name(record.name)
        if parsed is None:
            unparsed.append(record.name)
            continue
        hint = path_category(record.path, record.name)
        if parsed.category is not None and parsed.canonical is not None:
            is_alias_word = parsed.stem != parsed.canonical and currency_pair(parsed.stem) is None
            if hint == STOCKS and parsed.category != STOCKS and is_alias_word:
                # Alias words double as tickers (GOLD is Barrick Gold); a Stocks folder settles it.
                detected.append(_detected(record, parsed, STOCKS, parsed.stem, known=False))
            else:
                detected.append(_detected(record, parsed, parsed.category, parsed.canonical, known=True))
            continue
        category = hint or description_category(record.description)
        if category is None:
            detected.append(_detected(record, parsed, OTHER, parsed.stem, known=False))
        else:
            pending.append((record, category))

    conventions = _conventions(detected)
    for record, category in pending:
        # A glued suffix (NOR25Cash) is only recognisable by comparison with the broker's known symbols.
        convention = conventions.get(category)
        parsed = parse_name(record.name, (convention[1],) if convention else ())
        if parsed is not None:
            detected.append(_detected(record, parsed, category, parsed.stem, known=False))
    return _assemble(detected, unparsed=unparsed, prefer_suffix=prefer_suffix)


def _record_key(record: _Record) -> tuple[str, str, str, str]:
    return record.name, record.path, record.description, str(record.contract_size)


def _detected(record: _Record, parsed: Parsed, category: str, base: str, *, known: bool) -> DetectedSymbol:
    return DetectedSymbol(
        base_symbol=base,
        full_symbol=record.name,
        prefix=parsed.prefix,
        suffix=parsed.suffix,
        category=category,
        stem=parsed.stem,
        description=record.description,
        path=record.path,
        contract_size=record.contract_size,
        known=known,
    )


def _assemble(
    detected: list[DetectedSymbol],
    *,
    unparsed: Iterable[str],
    prefer_suffix: str | Mapping[str, str] | None,
) -> BrokerSymbolMap:
    groups: dict[str, list[DetectedSymbol]] = {}
    for d in detected:
        groups.setdefault(d.base_symbol, []).append(d)

    # A base placed in two categories by different hints gets the most common real one.
    settled: list[DetectedSymbol] = []
    for members in groups.values():
        votes = Counter(d.category for d in members if d.category != OTHER)
        category = min(votes, key=lambda c: (-votes[c], c)) if votes else OTHER
        settled.extend(d if d.category == category else replace(d, category=category) for d in members)

    conventions = _conventions(settled)
    preferred: dict[str, tuple[str, str]] = {}
    for category, (prefix, suffix) in conventions.items():
        wanted = prefer_suffix.get(category) if isinstance(prefer_suffix, Mapping) else prefer_suffix
        if isinstance(wanted, str) and any(d.category == category and d.suffix == wanted for d in settled):
            suffix = wanted
        preferred[category] = (prefix, suffix)

    def rank(d: DetectedSymbol) -> tuple[bool, bool, bool, int, str]:
        prefix, suffix = preferred.get(d.category, ("", ""))
        return d.suffix != suffix, d.prefix != prefix, d.stem != d.base_symbol, len(d.prefix + d.suffix), d.full_symbol

    by_base: dict[str, list[DetectedSymbol]] = {}
    for d in settled:
        by_base.setdefault(d.base_symbol, []).append(d)
    variants = {base: tuple(sorted(members, key=rank)) for base, members in sorted(by_base.items())}
    categories: dict[str, dict[str, DetectedSymbol]] = {category: {} for category in CATEGORIES}
    for base, members in variants.items():
        categories[members[0].category][base] = members[0]

    unrecognised = {d.full_symbol for d in settled if d.category == OTHER} | set(unparsed)
    return BrokerSymbolMap(
        categories=categories,
        variants=variants,
        dominant_prefix={category: prefix for category, (prefix, _) in conventions.items()},
        dominant_suffix={category: suffix for category, (_, suffix) in conventions.items()},
        unrecognised=tuple(sorted(unrecognised)),
    )
