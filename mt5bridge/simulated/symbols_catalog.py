"""The simulated MT5 servers and the symbols each one lists, with broker-specific names and specs."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property

from mt5bridge.gateway.types import SymbolInfo

FOREX = "forex"
METAL = "metal"
INDEX = "index"
ENERGY = "energy"
CRYPTO = "crypto"
STOCK = "stock"
KINDS = (FOREX, METAL, INDEX, ENERGY, CRYPTO, STOCK)


@dataclass(frozen=True)
class Instrument:
    """An underlying market. Its price walk is shared by every broker that lists it."""

    key: str
    kind: str
    description: str
    digits: int
    base_price: float
    volatility: float  # annualised, as a fraction of price
    currency_base: str
    currency_profit: str
    contract_size: Decimal
    volume_min: Decimal
    volume_step: Decimal
    volume_max: Decimal
    spread: int  # points, typical retail spread
    swap_long: Decimal  # account currency per lot per rollover
    swap_short: Decimal
    path_group: str


def _fx(key: str, desc: str, digits: int, price: float, vol: float, spread: int, sl: str, ss: str, group: str):
    return Instrument(
        key, FOREX, desc, digits, price, vol, key[:3], key[3:], Decimal(100000),
        Decimal("0.01"), Decimal("0.01"), Decimal(100), spread, Decimal(sl), Decimal(ss), group,
    )  # fmt: skip


_CFD_VOLUMES = (Decimal("0.1"), Decimal("0.1"), Decimal(500))
_CRYPTO_VOLUMES = (Decimal("0.01"), Decimal("0.01"), Decimal(20))
_STOCK_VOLUMES = (Decimal(1), Decimal(1), Decimal(10000))


def _cfd(key, kind, desc, digits, price, vol, base, profit, size, volumes, spread, sl, ss, group):
    return Instrument(
        key, kind, desc, digits, price, vol, base, profit, Decimal(size), *volumes, spread,
        Decimal(sl), Decimal(ss), group,
    )  # fmt: skip


INSTRUMENTS: dict[str, Instrument] = {
    i.key: i
    for i in (
        _fx("EURUSD", "Euro vs US Dollar", 5, 1.0850, 0.07, 10, "-7.20", "2.10", "Majors"),
        _fx("GBPUSD", "Great Britain Pound vs US Dollar", 5, 1.2700, 0.08, 12, "-5.80", "0.90", "Majors"),
        _fx("USDJPY", "US Dollar vs Japanese Yen", 3, 150.00, 0.09, 11, "9.40", "-21.30", "Majors"),
        _fx("AUDUSD", "Australian Dollar vs US Dollar", 5, 0.6600, 0.10, 13, "-2.40", "-1.10", "Majors"),
        _fx("USDCHF", "US Dollar vs Swiss Franc", 5, 0.8800, 0.07, 14, "6.10", "-13.60", "Majors"),
        _fx("USDCAD", "US Dollar vs Canadian Dollar", 5, 1.3600, 0.06, 15, "1.20", "-6.90", "Majors"),
        _fx("NZDUSD", "New Zealand Dollar vs US Dollar", 5, 0.6000, 0.10, 16, "-2.00", "-1.60", "Majors"),
        _fx("EURJPY", "Euro vs Japanese Yen", 3, 162.00, 0.09, 18, "5.10", "-16.40", "Crosses"),
        _fx("GBPJPY", "Great Britain Pound vs Japanese Yen", 3, 190.00, 0.11, 25, "8.30", "-22.10", "Crosses"),
        _fx("EURGBP", "Euro vs Great Britain Pound", 5, 0.8550, 0.06, 15, "-5.10", "0.40", "Crosses"),
        _cfd("XAUUSD", METAL, "Gold vs US Dollar", 2, 2350.0, 0.15, "XAU", "USD", 100,
             (Decimal("0.01"), Decimal("0.01"), Decimal(50)), 25, "-38.00", "14.00", "Spot"),
        _cfd("XAGUSD", METAL, "Silver vs US Dollar", 3, 28.0, 0.25, "XAG", "USD", 5000,
             (Decimal("0.01"), Decimal("0.01"), Decimal(50)), 30, "-9.50", "2.20", "Spot"),
        _cfd("BTCUSD", CRYPTO, "Bitcoin vs US Dollar", 2, 65000.0, 0.60, "BTC", "USD", 1,
             _CRYPTO_VOLUMES, 3500, "-18.00", "-6.00", "Major"),
        _cfd("ETHUSD", CRYPTO, "Ethereum vs US Dollar", 2, 3200.0, 0.70, "ETH", "USD", 1,
             _CRYPTO_VOLUMES, 250, "-1.20", "-0.40", "Major"),
        _cfd("US30", INDEX, "Dow Jones Industrial Average", 1, 39000.0, 0.15, "USD", "USD", 1,
             _CFD_VOLUMES, 20, "-5.90", "1.80", "US"),
        _cfd("US500", INDEX, "S&P 500", 2, 5200.0, 0.16, "USD", "USD", 1,
             _CFD_VOLUMES, 50, "-0.80", "0.20", "US"),
        _cfd("NAS100", INDEX, "Nasdaq 100", 2, 18000.0, 0.20, "USD", "USD", 1,
             _CFD_VOLUMES, 150, "-2.70", "0.70", "US"),
        _cfd("GER40", INDEX, "Germany 40", 1, 18000.0, 0.16, "EUR", "EUR", 1,
             _CFD_VOLUMES, 15, "-2.40", "0.30", "EU"),
        _cfd("UK100", INDEX, "UK 100", 1, 8000.0, 0.13, "GBP", "GBP", 1,
             _CFD_VOLUMES, 12, "-1.10", "0.10", "EU"),
        _cfd("JP225", INDEX, "Japan 225", 0, 38000.0, 0.20, "JPY", "JPY", 1,
             (Decimal(1), Decimal(1), Decimal(500)), 10, "-90.00", "20.00", "Asia"),
        _cfd("USOIL", ENERGY, "WTI Crude Oil", 2, 80.0, 0.35, "USD", "USD", 1000,
             (Decimal("0.01"), Decimal("0.01"), Decimal(100)), 4, "-6.50", "1.50", "Oil"),
        _cfd("UKOIL", ENERGY, "Brent Crude Oil", 2, 84.0, 0.33, "USD", "USD", 1000,
             (Decimal("0.01"), Decimal("0.01"), Decimal(100)), 4, "-6.10", "1.30", "Oil"),
        _cfd("AAPL", STOCK, "Apple Inc.", 2, 190.0, 0.28, "USD", "USD", 1,
             _STOCK_VOLUMES, 6, "-0.03", "-0.01", "NASDAQ"),
        _cfd("TSLA", STOCK, "Tesla Inc.", 2, 180.0, 0.55, "USD", "USD", 1,
             _STOCK_VOLUMES, 12, "-0.03", "-0.01", "NASDAQ"),
        _cfd("MSFT", STOCK, "Microsoft Corporation", 2, 420.0, 0.25, "USD", "USD", 1,
             _STOCK_VOLUMES, 8, "-0.06", "-0.02", "NASDAQ"),
        _cfd("AMZN", STOCK, "Amazon.com Inc.", 2, 180.0, 0.32, "USD", "USD", 1,
             _STOCK_VOLUMES, 7, "-0.03", "-0.01", "NASDAQ"),
        _cfd("NVDA", STOCK, "NVIDIA Corporation", 2, 900.0, 0.50, "USD", "USD", 1,
             _STOCK_VOLUMES, 20, "-0.12", "-0.04", "NASDAQ"),
    )
}  # fmt: skip

_TOP_FOLDER = {FOREX: "Forex", METAL: "Metals", INDEX: "Indices", ENERGY: "Energies", CRYPTO: "Crypto", STOCK: "Stocks"}


@dataclass(frozen=True)
class SymbolSpec:
    """One symbol as one broker lists it: its own name, path, sizes, spread and costs."""

    server: str
    name: str
    instrument: Instrument = field(repr=False)
    path: str
    description: str
    digits: int
    contract_size: Decimal
    volume_min: Decimal
    volume_step: Decimal
    volume_max: Decimal
    spread: int  # points
    stops_level: int  # points
    commission_per_lot: Decimal  # account currency per lot per side, negative = charged
    swap_long: Decimal
    swap_short: Decimal

    @property
    def kind(self) -> str:
        return self.instrument.kind

    @property
    def key(self) -> str:
        return self.instrument.key

    @cached_property
    def point(self) -> Decimal:
        return Decimal(1).scaleb(-self.digits)

    @property
    def currency_base(self) -> str:
        return self.instrument.currency_base

    @property
    def currency_profit(self) -> str:
        return self.instrument.currency_profit

    @property
    def currency_margin(self) -> str:
        return self.instrument.currency_base

    def to_info(self) -> SymbolInfo:
        return SymbolInfo(
            name=self.name,
            path=self.path,
            description=self.description,
            digits=self.digits,
            point=self.point,
            contract_size=self.contract_size,
            volume_min=self.volume_min,
            volume_step=self.volume_step,
            volume_max=self.volume_max,
            currency_base=self.currency_base,
            currency_profit=self.currency_profit,
            currency_margin=self.currency_margin,
            trade_stops_level=self.stops_level,
        )


@dataclass(frozen=True)
class GroupSpec:
    name: str
    margin_call: Decimal = Decimal(100)
    stop_out: Decimal = Decimal(50)


@dataclass(frozen=True)
class ServerSpec:
    name: str
    company: str
    first_ticket: int
    groups: tuple[GroupSpec, ...]
    symbols: tuple[SymbolSpec, ...] = field(repr=False)

    @cached_property
    def by_name(self) -> dict[str, SymbolSpec]:
        return {s.name: s for s in self.symbols}

    def symbol(self, name: str) -> SymbolSpec | None:
        return self.by_name.get(name)


def _listing(server: str, inst: Instrument, name: str, path: str, **overrides) -> SymbolSpec:
    values = {
        "description": inst.description,
        "digits": inst.digits,
        "contract_size": inst.contract_size,
        "volume_min": inst.volume_min,
        "volume_step": inst.volume_step,
        "volume_max": inst.volume_max,
        "spread": inst.spread,
        "stops_level": 0,
        "commission_per_lot": Decimal(0),
        "swap_long": inst.swap_long,
        "swap_short": inst.swap_short,
    }
    values.update(overrides)
    return SymbolSpec(server=server, name=name, instrument=inst, path=path, **values)


def _metasim_demo() -> ServerSpec:
    name = "MetaSim-Demo"
    symbols = []
    for inst in INSTRUMENTS.values():
        sub = "\\".join(
            part for part in (_TOP_FOLDER[inst.kind], inst.path_group if inst.kind != CRYPTO else "") if part
        )
        # A demo server keeps a small stops level on forex so that too-close stops are refused.
        stops = 10 if inst.kind == FOREX else (20 if inst.kind == METAL else 0)
        symbols.append(_listing(name, inst, inst.key, f"{sub}\\{inst.key}", stops_level=stops))
    groups = (GroupSpec("demo\\standard"), GroupSpec("demo\\netting"), GroupSpec("demo\\pro", Decimal(80), Decimal(30)))
    return ServerSpec(name, "MetaSim Markets Ltd", 5_000_000, groups, tuple(symbols))


def _metasim_live() -> ServerSpec:
    name = "MetaSim-Live"
    symbols = []
    for inst in INSTRUMENTS.values():
        if inst.kind == INDEX:
            sym, path = f"{inst.key}.cash", f"Indices\\Cash\\{inst.key}.cash"
        elif inst.kind == STOCK:
            sym, path = f"{inst.key}.NAS", f"Stocks\\NASDAQ\\{inst.key}.NAS"
        elif inst.kind == FOREX:
            sym, path = f"{inst.key}.pro", f"Forex\\{inst.path_group}\\{inst.key}.pro"
        else:
            sym, path = f"{inst.key}.pro", f"{_TOP_FOLDER[inst.kind]}\\{inst.key}.pro"
        overrides: dict = {}
        if inst.kind == FOREX:
            # Raw-spread forex with a per-lot commission, as ECN accounts are sold.
            overrides = {"spread": max(1, inst.spread // 5), "commission_per_lot": Decimal("-3.50")}
        elif inst.kind == METAL:
            overrides = {"spread": max(2, inst.spread // 2)}
        symbols.append(_listing(name, inst, sym, path, **overrides))
    groups = (
        GroupSpec("real\\standard"),
        GroupSpec("real\\pro", Decimal(100), Decimal(50)),
        GroupSpec("real\\netting"),
    )
    return ServerSpec(name, "MetaSim Markets Ltd", 80_000_000, groups, tuple(symbols))


_OTHERFX_NAMES = {
    "XAUUSD": "GOLD",
    "XAGUSD": "SILVER",
    "USOIL": "WTI",
    "UKOIL": "BRENT",
}


def _otherfx() -> ServerSpec:
    name = "OtherFX-Server"
    symbols = []
    for inst in INSTRUMENTS.values():
        overrides: dict = {"spread": inst.spread + inst.spread // 2, "stops_level": 20 if inst.kind == FOREX else 0}
        if inst.key in _OTHERFX_NAMES:
            sym = _OTHERFX_NAMES[inst.key]
            path = f"{_TOP_FOLDER[inst.kind]}\\{sym}"
            overrides["description"] = {"GOLD": "Gold Spot", "SILVER": "Silver Spot"}.get(sym, inst.description)
        elif inst.kind in (INDEX, STOCK):
            sym = f"#{inst.key}"
            path = f"CFD {_TOP_FOLDER[inst.kind]}\\{sym}"
            if inst.kind == INDEX:
                # This broker sizes index CFDs at 10 per point, not 1.
                overrides.update(contract_size=Decimal(10), volume_min=Decimal("0.01"), volume_step=Decimal("0.01"))
        else:
            sym = f"{inst.key}m"
            path = f"{'Forex Micro' if inst.kind == FOREX else _TOP_FOLDER[inst.kind]}\\{sym}"
        symbols.append(_listing(name, inst, sym, path, **overrides))
    groups = (GroupSpec("otherfx\\demo"), GroupSpec("otherfx\\real", Decimal(100), Decimal(20)))
    return ServerSpec(name, "OtherFX Global Ltd", 300_000_000, groups, tuple(symbols))


SERVERS: dict[str, ServerSpec] = {s.name: s for s in (_metasim_demo(), _metasim_live(), _otherfx())}
DEFAULT_SERVER = "MetaSim-Demo"


def get_server(name: str) -> ServerSpec | None:
    return SERVERS.get(name)


def symbol_spec(server: str, name: str) -> SymbolSpec | None:
    spec = SERVERS.get(server)
    return spec.symbol(name) if spec else None


def find_symbol(name: str, server: str | None = None) -> SymbolSpec | None:
    """The symbol called ``name``: on ``server`` first, then on any server (the demo one first)."""
    if server:
        found = symbol_spec(server, name)
        if found:
            return found
    for spec in SERVERS.values():
        found = spec.symbol(name)
        if found:
            return found
    return None


def canonical(key: str) -> SymbolSpec:
    """The demo server's listing of an instrument, used for currency conversion."""
    return SERVERS[DEFAULT_SERVER].by_name[key]
