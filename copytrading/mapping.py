"""Symbol mapping between a master's and a slave's broker, with each broker's symbol list cached."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache

from config.caches import Memo
from mt5bridge import gateway as gw
from mt5bridge.symbols import BrokerSymbolMap, detect_symbols, map_symbol

from .sizing import VolumeRules

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SymbolSpec:
    """What sizing and pricing need of one broker symbol."""

    name: str
    contract_size: Decimal | None
    volume: VolumeRules
    point: Decimal


@dataclass(frozen=True)
class BrokerSymbols:
    detected: BrokerSymbolMap
    specs: Mapping[str, SymbolSpec]


@dataclass(frozen=True)
class Resolved:
    """Where a master symbol lands on the slave: its name, its spec and the lot conversion."""

    symbol: str
    spec: SymbolSpec
    contract_ratio: Decimal | None
    rule: str


DEFAULT_SPEC_VOLUME = VolumeRules()
# Each broker's built symbol list, keyed by (kind, server, COPY_SYMBOLS_CACHE_SECONDS-long slice of time):
# rebuilt from the shared cache (or the gateway) once per slice.
SYMBOLS: Memo[BrokerSymbols] = Memo("copytrading.broker_symbols", size=256)


def _records_from_gateway(kind: str, server: str, login: int) -> list[dict]:
    gateway = gw.get_gateway(kind, server=server)
    return [
        {
            "name": s.name,
            "path": s.path,
            "description": s.description,
            "contract_size": str(s.contract_size),
            "volume_min": str(s.volume_min),
            "volume_step": str(s.volume_step),
            "volume_max": str(s.volume_max),
            "point": str(s.point),
        }
        for s in gateway.symbols(login)
    ]


def _build(records: list[dict]) -> BrokerSymbols:
    specs = {
        r["name"]: SymbolSpec(
            name=r["name"],
            contract_size=Decimal(r["contract_size"]) if r.get("contract_size") else None,
            volume=VolumeRules(Decimal(r["volume_min"]), Decimal(r["volume_step"]), Decimal(r["volume_max"])),
            point=Decimal(r["point"]),
        )
        for r in records
    }
    return BrokerSymbols(detected=detect_symbols(records), specs=specs)


def broker_symbols(kind: str, server: str, login: int) -> BrokerSymbols | None:
    """The symbol list of ``server`` (in-process, then the shared cache, then the gateway). None if unreachable."""
    moment = int(time.monotonic() // settings.COPY_SYMBOLS_CACHE_SECONDS)
    hit = SYMBOLS.peek((kind, server, moment))
    if hit is not None:
        return hit
    cache_key = f"copytrading:symbols:{kind}:{server}"
    records = cache.get(cache_key)
    if records is None:
        try:
            records = _records_from_gateway(kind, server, login)
        except gw.GatewayError as exc:
            logger.warning("symbol list of %s unavailable: %s", server, exc)
            return None
        cache.set(cache_key, records, settings.COPY_SYMBOLS_CACHE_SECONDS)
    built = _build(records)
    return SYMBOLS.get_or_build((kind, server, moment), lambda: built)


def clear_local_cache() -> None:
    SYMBOLS.clear()


def resolve(
    symbol: str,
    master: BrokerSymbols | None,
    slave: BrokerSymbols | None,
    overrides: Mapping[str, str | None] | None = None,
) -> Resolved | None:
    """The slave symbol for a master symbol, or None when the slave broker does not offer it (or it is blocked)."""
    if master is None or slave is None:
        # Without both lists, only an override or the same name can be used; lots convert 1:1.
        target = symbol
        if overrides and symbol in overrides:
            target = overrides[symbol] or ""
        if not target:
            return None
        spec = (slave.specs.get(target) if slave else None) or SymbolSpec(
            target, None, DEFAULT_SPEC_VOLUME, Decimal("0")
        )
        return Resolved(target, spec, None, "same_name")
    mapped = map_symbol(symbol, master.detected, slave.detected, overrides or None)
    if mapped is None:
        return None
    spec = slave.specs.get(mapped.target_symbol) or SymbolSpec(
        mapped.target_symbol, mapped.target_contract_size, DEFAULT_SPEC_VOLUME, Decimal("0")
    )
    return Resolved(mapped.target_symbol, spec, mapped.contract_size_ratio, mapped.rule)
