"""Broker symbol names: split prefixes/suffixes, detect each broker's conventions, map symbols between brokers.

The package's public interface is what this module names; its modules hold one concern each: ``tables``
(categories and the names brokers give symbols), ``values`` (what parsing produces), ``parsing`` (one name
taken apart), ``detection`` (a broker's whole list and its conventions: ``BrokerSymbolMap``) and ``mapping``
(a master's symbol on a slave's broker).
"""

from .detection import BrokerSymbolMap, detect_symbols
from .mapping import contract_size_ratio, map_symbol
from .parsing import canonical_base, category_of, normalize_base, split_affixes, symbol_folder
from .tables import (
    ALIAS_TO_BASE,
    BASE_CATEGORY,
    CATEGORIES,
    CRYPTO_COINS,
    CRYPTO_QUOTES,
    CURRENCIES,
    METAL_CODES,
)
from .values import DetectedSymbol, SymbolMapping

__all__ = [
    "ALIAS_TO_BASE",
    "BASE_CATEGORY",
    "CATEGORIES",
    "CRYPTO_COINS",
    "CRYPTO_QUOTES",
    "CURRENCIES",
    "METAL_CODES",
    "BrokerSymbolMap",
    "DetectedSymbol",
    "SymbolMapping",
    "canonical_base",
    "category_of",
    "contract_size_ratio",
    "detect_symbols",
    "map_symbol",
    "normalize_base",
    "split_affixes",
    "symbol_folder",
]
