"""Symbol tables: categories, currencies, metals, coins, indices and the names brokers give them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

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

MAX_STEM = max(max(len(name) for name in ALIAS_TO_BASE), 10)
LOWER_SUFFIX_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+#._-")
TRAILING_LOWER = re.compile(r"([A-Z0-9]{2,})([a-z]{1,8})")

PATH_HINTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (FOREX, re.compile(r"\b(?:forex|fx|currenc(?:y|ies)|majors?|minors?|exotics?|crosses)\b")),
    (METALS, re.compile(r"\b(?:metals?|gold|silver|bullion|precious)\b")),
    (CRYPTO, re.compile(r"\b(?:crypto\w*|coins?|digital)\b")),
    (INDICES, re.compile(r"\b(?:index|indexes|indices|indicies)\b")),
    (ENERGIES, re.compile(r"\b(?:energ\w*|oil|gas|crude)\b")),
    (STOCKS, re.compile(r"\b(?:stocks?|shares?|equit\w*)\b")),
)

# Order matters: "Barrick Gold Corp" is a share, not gold.
DESCRIPTION_HINTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (STOCKS, re.compile(r"\b(?:inc|corp|corporation|plc|ltd|ag|nv|holdings?|shares?|stock)\b")),
    (CRYPTO, re.compile(r"\b(?:bitcoin|ethereum|litecoin|ripple|crypto\w*|coin|token)\b")),
    (METALS, re.compile(r"\b(?:gold|silver|platinum|palladium|copper)\b")),
    (ENERGIES, re.compile(r"\b(?:oil|brent|wti|crude|natural gas|gasoline)\b")),
    (INDICES, re.compile(r"\b(?:index|indices)\b")),
)
