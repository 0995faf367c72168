"""Mapping a master broker's symbol to a slave broker's, with the contract-size ratio."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from .detection import BrokerSymbolMap
from .parsing import parse_name, split_affixes
from .tables import OTHER
from .values import DetectedSymbol, SymbolMapping

# --- Mapping ---


def contract_size_ratio(source: Decimal | None, target: Decimal | None) -> Decimal | None:
    """Source / target contract size: target lots = source lots x ratio. None when either is unknown."""
    if source is None or target is None or target <= 0 or source <= 0:
        return None
    return source / target


def _override(
    symbol: str, stem: str | None, base: str | None, overrides: Mapping[str, str | None]
) -> tuple[bool, str | None]:
    if symbol in overrides:
        return True, overrides[symbol]
    by_upper = {key.strip().upper(): value for key, value in overrides.items() if isinstance(key, str)}
    for key in (symbol.strip().upper(), stem, base):
        if key and key in by_upper:
            return True, by_upper[key]
    return False, None


def map_symbol(
    symbol: str,
    source: BrokerSymbolMap,
    target: BrokerSymbolMap,
    overrides: Mapping[str, str | None] | None = None,
) -> SymbolMapping | None:
    """The target broker's name for a source symbol, or None when the target does not offer it.

    Precedence: ``overrides`` (exact source name, then stem or canonical base; an empty value blocks the
    symbol), then the same stem with the target's affixes, then another alias of the same base.
    """
    if not isinstance(symbol, str):
        return None
    src = source.find(symbol)
    if src is not None:
        stem: str | None = src.stem
        base: str | None = src.base_symbol
        category = src.category
    else:
        parsed = parse_name(symbol)
        stem = parsed.stem if parsed else None
        base = (parsed.canonical or parsed.stem) if parsed else None
        category = (parsed.category or OTHER) if parsed else OTHER
    src_size = src.contract_size if src is not None else None

    def mapping(tgt: DetectedSymbol, rule: str) -> SymbolMapping:
        return SymbolMapping(
            source_symbol=symbol,
            target_symbol=tgt.full_symbol,
            base_symbol=tgt.base_symbol,
            category=tgt.category,
            rule=rule,
            source_contract_size=src_size,
            target_contract_size=tgt.contract_size,
            contract_size_ratio=contract_size_ratio(src_size, tgt.contract_size),
        )

    if overrides:
        matched, wanted = _override(symbol, stem, base, overrides)
        if matched:
            if not wanted:
                return None
            tgt = target.find(wanted)
            parts = split_affixes(wanted)
            if tgt is None and parts is not None and not parts[1] and not parts[2]:
                # A bare name ("WS30", "XAUUSD") means that stem or base with the target's own affixes.
                tgt = next(iter(target.with_stem(wanted)), None) or target.get(wanted)
            if tgt is not None:
                return mapping(tgt, "override")
            # The caller knows the target's name even when the target's list is incomplete.
            return SymbolMapping(
                source_symbol=symbol,
                target_symbol=wanted,
                base_symbol=base or wanted,
                category=category,
                rule="override",
                source_contract_size=src_size,
            )

    # Same base and category only: the GOLD share must not become gold. "other" is no evidence either way.
    def compatible(d: DetectedSymbol) -> bool:
        return d.base_symbol == base and (d.category == category or OTHER in (d.category, category))

    if stem:
        for tgt in target.with_stem(stem):
            if compatible(tgt):
                return mapping(tgt, "suffix")
    if base:
        for tgt in target.variants.get(base, ()):
            if compatible(tgt):
                return mapping(tgt, "alias")
    return None
