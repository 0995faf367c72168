"""Broker symbol names: split prefixes/suffixes, detect each broker's conventions, map symbols between brokers."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from functools import cached_property
from types import MappingProxyType
from typing import Any

# --- Categories ---

FOREX = "forex"
METALS = "metals"
CRYPTO = "crypto"
INDICES = "indices"
ENERGIES = "energies"
STOCKS = "stocks"
OTHER = "other"
CATEGORIES: tuple[str, ...] = (FOREX, METALS, CRYPTO, INDICES, ENERGIES, STOCKS, OTHER)

# --- Tables ---

# Fiat codes only: XAU/XAG/XPT/XPD are ISO 4217 too, but a broker lists them as metals, not forex.
CURRENCIES: frozenset[str] = frozenset(
    """
    USD EUR GBP JPY CHF AUD NZD CAD SEK NOK DKK PLN HUF CZK RON BGN HRK ISK TRY RUB UAH ZAR MXN BRL ARS CLP
    COP PEN SGD HKD CNH CNY TWD KRW THB IDR MYR PHP INR PKR ILS SAR AED KWD QAR BHD OMR JOD EGP MAD TND NGN
    KES GHS KZT VND
    """.split()
)

METAL_CODES: frozenset[str] = frozenset({"XAU", "XAG", "XPT", "XPD", "XCU"})

CRYPTO_COINS: frozenset[str] = frozenset(
    """
    BTC ETH LTC XRP BCH ADA DOT SOL DOGE LINK XLM EOS BNB TRX AVAX MATIC POL UNI SHIB XMR ETC ATOM ALGO XTZ
    DASH ZEC NEO FIL AAVE NEAR TON APT ARB OP SUI PEPE ICP HBAR VET MKR COMP SNX CRV SAND MANA AXS GRT
    """.split()
)

# USDT/USDC pairs are kept as their own base: they are quoted in a stablecoin, not in US dollars.
CRYPTO_QUOTES: tuple[str, ...] = ("USDT", "USDC", "USD", "EUR", "GBP", "JPY", "AUD", "BTC", "ETH")

COIN_ALIASES: Mapping[str, str] = MappingProxyType({"XBT": "BTC"})

# Canonical base -> other names brokers use for it. The canonical name is the payload key.
METAL_ALIASES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "XAUUSD": ("GOLD", "GOLDUSD"),
        "XAGUSD": ("SILVER", "SILVERUSD"),
        "XPTUSD": ("PLATINUM",),
        "XPDUSD": ("PALLADIUM",),
        "XCUUSD": ("COPPER",),
        "XAUEUR": ("GOLDEURO", "GOLDEUR"),
        "XAGEUR": ("SILVEREURO", "SILVEREUR"),
    }
)

ENERGY_ALIASES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "USOIL": ("WTI", "XTIUSD", "CL-OIL", "USOUSD", "WTIUSD", "WTICOUSD", "USCRUDE", "CRUDEOIL", "CRUDE"),
        "UKOIL": ("BRENT", "XBRUSD", "UKOUSD", "BRENTOIL", "BCOUSD", "BRENTUSD"),
        "NGAS": ("NATGAS", "XNGUSD", "NATURALGAS", "NGASUSD"),
    }
)

INDEX_ALIASES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "US30": ("DJ30", "WS30", "DOW30", "DJI30", "USA30", "DJIA", "DOWJONES"),
        "US500": ("SPX500", "SP500", "USA500", "SPX"),
        "NAS100": ("USTEC", "NDX100", "US100", "USA100", "NQ100", "USTECH", "USTECH100", "NASDAQ100", "NDX"),
        "US2000": ("RUSSELL2000", "RUS2000", "USSC2000"),
        "GER40": ("DE40", "GER30", "DAX40", "DE30", "DAX30", "GERMANY40", "DAX"),
        "UK100": ("FTSE100", "FTSE", "UKX"),
        "JP225": ("JPN225", "NIKKEI225", "NIKKEI", "NI225", "JAP225"),
        "FRA40": ("FR40", "CAC40", "F40", "CAC"),
        "EU50": ("EUSTX50", "STOXX50", "ESTX50", "EURO50", "EUSTOXX50", "SX5E"),
        "ESP35": ("SPA35", "ES35", "IBEX35", "IBEX"),
        "AUS200": ("AU200", "ASX200"),
        "HK50": ("HSI50", "HSI", "HONGKONG50"),
        "CHINA50": ("CN50", "CHN50", "A50"),
        "SWI20": ("CH20", "SMI20", "SUI20", "SMI"),
        "NETH25": ("NL25", "AEX25", "AEX"),
        "USDX": ("DXY", "USDINDEX", "DOLLARINDEX"),
        "VIX": ("VOLX",),
    }
)

CRYPTO_ALIASES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "BTCUSD": ("BITCOIN",),
        "ETHUSD": ("ETHEREUM",),
        "LTCUSD": ("LITECOIN",),
        "XRPUSD": ("RIPPLE",),
        "BCHUSD": ("BITCOINCASH",),
        "DOGEUSD": ("DOGECOIN",),
        "ADAUSD": ("CARDANO",),
        "SOLUSD": ("SOLANA",),
        "DOTUSD": ("POLKADOT",),
    }
)

# Single-letter tickers (F, T, C, V) are left out: they would match the start of too many names.
# GOLD (Barrick) is left out on purpose, see the stock rule in detect_symbols().
STOCK_TICKERS: tuple[str, ...] = tuple(
    """
    AAPL MSFT AMZN GOOGL GOOG META NVDA TSLA NFLX AMD INTC BABA BA JPM MA KO PEP DIS NKE MCD WMT XOM CVX PFE
    JNJ BAC WFC GS MS ORCL IBM CSCO ADBE CRM PYPL UBER COIN PLTR SNAP SHOP SBUX GM GE CAT HD UNH ABNB ZM MU
    QCOM AVGO TXN ARM LLY MRK ABBV COST TMO AXP BKNG NOW INTU AMAT SPOT RIVN LCID NIO JD PDD TSM ASML SAP
    SIE BMW VOW3 ALV DTE BAYN BAS ADS
    """.split()
)

STOCK_ALIASES: Mapping[str, tuple[str, ...]] = MappingProxyType({"META": ("FB",)})


def _build_tables() -> tuple[dict[str, str], dict[str, str]]:
    alias_to_base: dict[str, str] = {}
    category_of_base: dict[str, str] = {}
    groups: list[tuple[str, Mapping[str, tuple[str, ...]]]] = [
        (METALS, METAL_ALIASES),
        (ENERGIES, ENERGY_ALIASES),
        (INDICES, INDEX_ALIASES),
        (CRYPTO, CRYPTO_ALIASES),
        (STOCKS, {ticker: () for ticker in STOCK_TICKERS}),
        (STOCKS, STOCK_ALIASES),
    ]
    for category, table in groups:
        for base, aliases in table.items():
            category_of_base[base] = category
            for name in (base, *aliases):
                if alias_to_base.get(name, base) != base:
                    raise ValueError(f"symbol alias {name} is listed for two bases")
                alias_to_base[name] = base
    return alias_to_base, category_of_base


_alias_to_base, _category_of_base = _build_tables()

# Every fixed name (canonical or alias) -> canonical base. Pair-shaped names (EURUSD, XAUJPY, ETHBTC) are rules.
ALIAS_TO_BASE: Mapping[str, str] = MappingProxyType(_alias_to_base)
BASE_CATEGORY: Mapping[str, str] = MappingProxyType(_category_of_base)

# Suffix words some brokers glue on without a separator and in capitals (US30Cash, EURUSDECN).
SUFFIX_WORDS: frozenset[str] = frozenset({"CASH", "ECN", "PRO", "RAW", "STD", "VIP", "ZERO", "MICRO"})

_MAX_STEM = max(max(len(name) for name in ALIAS_TO_BASE), 10)
_LOWER_SUFFIX_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+#._-")
_TRAILING_LOWER = re.compile(r"([A-Z0-9]{2,})([a-z]{1,8})")

_PATH_HINTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (FOREX, re.compile(r"\b(?:forex|fx|currenc(?:y|ies)|majors?|minors?|exotics?|crosses)\b")),
    (METALS, re.compile(r"\b(?:metals?|gold|silver|bullion|precious)\b")),
    (CRYPTO, re.compile(r"\b(?:crypto\w*|coins?|digital)\b")),
    (INDICES, re.compile(r"\b(?:index|indexes|indices|indicies)\b")),
    (ENERGIES, re.compile(r"\b(?:energ\w*|oil|gas|crude)\b")),
    (STOCKS, re.compile(r"\b(?:stocks?|shares?|equit\w*)\b")),
)

# Order matters: "Barrick Gold Corp" is a share, not gold.
_DESCRIPTION_HINTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (STOCKS, re.compile(r"\b(?:inc|corp|corporation|plc|ltd|ag|nv|holdings?|shares?|stock)\b")),
    (CRYPTO, re.compile(r"\b(?:bitcoin|ethereum|litecoin|ripple|crypto\w*|coin|token)\b")),
    (METALS, re.compile(r"\b(?:gold|silver|platinum|palladium|copper)\b")),
    (ENERGIES, re.compile(r"\b(?:oil|brent|wti|crude|natural gas|gasoline)\b")),
    (INDICES, re.compile(r"\b(?:index|indices)\b")),
)


# --- Values ---


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
        parsed = _parse(base)
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
                    parsed = _parse(full)
                    suffix = parsed.suffix if parsed else ""
                head = full[: len(full) - len(suffix)]
                prefix = _leading_prefix(head)
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


# --- Parsing ---


@dataclass(frozen=True)
class _Parsed:
    stem: str
    prefix: str
    suffix: str
    category: str | None  # None: not in the tables
    canonical: str | None


def _leading_prefix(name: str) -> str:
    end = 0
    while end < len(name) and not name[end].isalnum():
        end += 1
    return name[:end]


def _pair(stem: str) -> tuple[str, str] | None:
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
    return _pair(stem)


def _is_suffix(rest: str) -> bool:
    if not rest:
        return True
    if not rest[0].isalnum():  # separator first: .raw -ECN _i + #
        return True
    if "a" <= rest[0] <= "z":  # glued lower case: m, c, pro, ecn, micro
        return len(rest) <= 8 and all(ch in _LOWER_SUFFIX_CHARS for ch in rest)
    # Glued capitals only for known words, or "GEMINI" would read as GE + "MINI".
    return rest.upper() in SUFFIX_WORDS


def _match_known(core: str) -> tuple[str, str, str, str] | None:
    """Longest known stem at the start of ``core`` followed by something suffix-like."""
    limit = min(len(core), _MAX_STEM)
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


def _parse(name: Any, suffixes: Iterable[str] = ()) -> _Parsed | None:
    if not isinstance(name, str):
        return None
    name = name.strip()
    prefix = _leading_prefix(name)
    core = name[len(prefix) :]
    if not core:
        return None
    known = _match_known(core)
    if known is not None:
        stem, suffix, category, canonical = known
        return _Parsed(stem, prefix, suffix, category, canonical)
    for suffix in sorted({s for s in suffixes if s}, key=lambda s: (-len(s), s)):
        head = core[: -len(suffix)]
        if core.endswith(suffix) and head and head[-1].isalnum():
            return _Parsed(head.upper(), prefix, suffix, None, None)
    for index, char in enumerate(core):
        if not char.isalnum():
            return _Parsed(core[:index].upper(), prefix, core[index:], None, None)
    for word in SUFFIX_WORDS:
        tail = core[-len(word) :]
        if len(core) > len(word) and tail.upper() == word and tail[0].isupper() and tail[1:].islower():
            return _Parsed(core[: -len(word)].upper(), prefix, tail, None, None)
    glued = _TRAILING_LOWER.fullmatch(core)
    if glued is not None:
        return _Parsed(glued.group(1), prefix, glued.group(2), None, None)
    return _Parsed(core.upper(), prefix, "", None, None)


def split_affixes(name: str, suffixes: Iterable[str] = ()) -> tuple[str, str, str] | None:
    """``(stem, prefix, suffix)`` for any name, known or not; None when it has no letters or digits.

    Known stems are matched first; otherwise one of ``suffixes`` (e.g. the broker's dominant suffix) is cut
    off, else the name is cut at its first separator, else a glued capitalised suffix word (``Cash``) or a
    trailing lower-case run (``m``) is the suffix.
    """
    parsed = _parse(name, suffixes)
    if parsed is None:
        return None
    return parsed.stem, parsed.prefix, parsed.suffix


def normalize_base(name: str) -> tuple[str, str, str] | None:
    """``(stem, prefix, suffix)`` when the name is a known symbol, e.g. ``#US30.cash`` -> ``("US30", "#", ".cash")``.

    The stem is the broker's spelling (``GOLD``); ``canonical_base`` turns it into ``XAUUSD``.
    """
    parsed = _parse(name)
    if parsed is None or parsed.category is None:
        return None
    return parsed.stem, parsed.prefix, parsed.suffix


def canonical_base(name: str) -> str | None:
    """The canonical base of a known name or alias (``GOLDm`` -> ``XAUUSD``), else None."""
    parsed = _parse(name)
    return parsed.canonical if parsed is not None else None


def category_of(base: str) -> str:
    """Category of a base, alias or affixed name; ``"other"`` when the tables do not know it."""
    parsed = _parse(base)
    if parsed is None or parsed.category is None:
        return OTHER
    return parsed.category


def symbol_folder(path: str, name: str) -> str:
    """The folder part of an MT5 symbol path (``Forex\\Majors\\EURUSD.pro`` -> ``Forex\\Majors``)."""
    parts = [part for part in re.split(r"[\\/]+", path or "") if part]
    if parts and parts[-1] == name:
        parts.pop()
    return "\\".join(parts)


def _path_category(path: str, name: str) -> str | None:
    # The innermost folder that says something wins: "Forex\Metals" holds metals.
    for part in reversed(symbol_folder(path, name).split("\\")):
        words = re.sub(r"[^a-z]+", " ", part.lower())
        for category, pattern in _PATH_HINTS:
            if pattern.search(words):
                return category
    return None


def _description_category(description: str) -> str | None:
    words = re.sub(r"[^a-z]+", " ", description.lower())
    for category, pattern in _DESCRIPTION_HINTS:
        if pattern.search(words):
            return category
    return None


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
        parsed = _parse(record.name)
        if parsed is None:
            unparsed.append(record.name)
            continue
        hint = _path_category(record.path, record.name)
        if parsed.category is not None and parsed.canonical is not None:
            is_alias_word = parsed.stem != parsed.canonical and _pair(parsed.stem) is None
            if hint == STOCKS and parsed.category != STOCKS and is_alias_word:
                # Alias words double as tickers (GOLD is Barrick Gold); a Stocks folder settles it.
                detected.append(_detected(record, parsed, STOCKS, parsed.stem, known=False))
            else:
                detected.append(_detected(record, parsed, parsed.category, parsed.canonical, known=True))
            continue
        category = hint or _description_category(record.description)
        if category is None:
            detected.append(_detected(record, parsed, OTHER, parsed.stem, known=False))
        else:
            pending.append((record, category))

    conventions = _conventions(detected)
    for record, category in pending:
        # A glued suffix (NOR25Cash) is only recognisable by comparison with the broker's known symbols.
        convention = conventions.get(category)
        parsed = _parse(record.name, (convention[1],) if convention else ())
        if parsed is not None:
            detected.append(_detected(record, parsed, category, parsed.stem, known=False))
    return _assemble(detected, unparsed=unparsed, prefer_suffix=prefer_suffix)


def _record_key(record: _Record) -> tuple[str, str, str, str]:
    return record.name, record.path, record.description, str(record.contract_size)


def _detected(record: _Record, parsed: _Parsed, category: str, base: str, *, known: bool) -> DetectedSymbol:
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
        parsed = _parse(symbol)
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
