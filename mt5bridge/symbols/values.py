"""What symbol parsing produces: one broker symbol taken apart, and a mapping between two brokers."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class DetectedSymbol:
    """One broker symbol, taken apart.

    ``base_symbol`` is the canonical base (``XAUUSD`` for ``GOLDm``); ``stem`` is the name as the broker
    spells it without prefix/suffix, upper-cased (``GOLD``).
    """

    base_symbol: str
    full_symbol: str
    prefix: str
    suffix: str
    category: str
    stem: str
    description: str = ""
    path: str = ""
    contract_size: Decimal | None = None
    known: bool = True  # False when only the path/description placed it (or nothing did: category "other")


@dataclass(frozen=True)
class SymbolMapping:
    """Where a source symbol lands on the target broker, and how lots convert.

    ``rule`` is ``"override"``, ``"suffix"`` (same stem, the target's affixes) or ``"alias"`` (another name
    for the same base). Target lots = source lots x ``contract_size_ratio`` keeps the notional equal.
    """

    source_symbol: str
    target_symbol: str
    base_symbol: str
    category: str
    rule: str
    source_contract_size: Decimal | None = None
    target_contract_size: Decimal | None = None
    contract_size_ratio: Decimal | None = None
