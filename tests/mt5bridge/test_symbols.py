"""Broker symbol parsing, convention detection and cross-broker mapping."""

from __future__ import annotations

import json
import string
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mt5bridge.gateway.types import SymbolInfo
from mt5bridge.symbols import (
    ALIAS_TO_BASE,
    BASE_CATEGORY,
    CATEGORIES,
    CRYPTO_COINS,
    CRYPTO_QUOTES,
    CURRENCIES,
    METAL_CODES,
    BrokerSymbolMap,
    canonical_base,
    category_of,
    contract_size_ratio,
    detect_symbols,
    map_symbol,
    normalize_base,
    split_affixes,
    symbol_folder,
)

# The project's autouse cache fixture is function-scoped; it holds no state these tests depend on.
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def sym(name: str, path: str = "", description: str = "", contract_size: str = "100000") -> SymbolInfo:
    return SymbolInfo(
        name=name,
        path=path,
        description=description,
        digits=5,
        point=Decimal("0.00001"),
        contract_size=Decimal(contract_size),
        volume_min=Decimal("0.01"),
        volume_step=Decimal("0.01"),
        volume_max=Decimal("100"),
    )


# --- normalize_base: one row per broker convention ---

CONVENTIONS = [
    # name, stem, prefix, suffix, canonical base, category
    ("EURUSD", "EURUSD", "", "", "EURUSD", "forex"),
    ("EURUSD.raw", "EURUSD", "", ".raw", "EURUSD", "forex"),
    ("EURUSDm", "EURUSD", "", "m", "EURUSD", "forex"),
    ("EURUSD.pro", "EURUSD", "", ".pro", "EURUSD", "forex"),
    ("EURUSD.a", "EURUSD", "", ".a", "EURUSD", "forex"),
    ("EURUSD-ECN", "EURUSD", "", "-ECN", "EURUSD", "forex"),
    ("EURUSD_i", "EURUSD", "", "_i", "EURUSD", "forex"),
    ("EURUSD+", "EURUSD", "", "+", "EURUSD", "forex"),
    ("EURUSD#", "EURUSD", "", "#", "EURUSD", "forex"),
    ("eurusd", "EURUSD", "", "", "EURUSD", "forex"),
    ("USDTRYc", "USDTRY", "", "c", "USDTRY", "forex"),
    ("EURPLN.x", "EURPLN", "", ".x", "EURPLN", "forex"),
    ("#US30", "US30", "#", "", "US30", "indices"),
    ("US30.cash", "US30", "", ".cash", "US30", "indices"),
    ("US30Cash", "US30", "", "Cash", "US30", "indices"),
    ("DJ30", "DJ30", "", "", "US30", "indices"),
    ("WS30", "WS30", "", "", "US30", "indices"),
    ("DOW30.f", "DOW30", "", ".f", "US30", "indices"),
    ("US500", "US500", "", "", "US500", "indices"),
    ("SPX500m", "SPX500", "", "m", "US500", "indices"),
    ("SP500", "SP500", "", "", "US500", "indices"),
    ("NAS100", "NAS100", "", "", "NAS100", "indices"),
    ("USTEC", "USTEC", "", "", "NAS100", "indices"),
    ("NDX100.cash", "NDX100", "", ".cash", "NAS100", "indices"),
    ("US100", "US100", "", "", "NAS100", "indices"),
    ("GER40", "GER40", "", "", "GER40", "indices"),
    ("DE40", "DE40", "", "", "GER40", "indices"),
    ("GER30", "GER30", "", "", "GER40", "indices"),
    ("DAX40", "DAX40", "", "", "GER40", "indices"),
    ("UK100", "UK100", "", "", "UK100", "indices"),
    ("FTSE100", "FTSE100", "", "", "UK100", "indices"),
    ("JP225", "JP225", "", "", "JP225", "indices"),
    ("JPN225", "JPN225", "", "", "JP225", "indices"),
    ("XAUUSD", "XAUUSD", "", "", "XAUUSD", "metals"),
    ("XAUUSD-ECN", "XAUUSD", "", "-ECN", "XAUUSD", "metals"),
    ("GOLD", "GOLD", "", "", "XAUUSD", "metals"),
    ("GOLDm", "GOLD", "", "m", "XAUUSD", "metals"),
    ("SILVER", "SILVER", "", "", "XAGUSD", "metals"),
    ("XAGUSD", "XAGUSD", "", "", "XAGUSD", "metals"),
    ("XAUEUR.pro", "XAUEUR", "", ".pro", "XAUEUR", "metals"),
    ("USOIL", "USOIL", "", "", "USOIL", "energies"),
    ("WTI", "WTI", "", "", "USOIL", "energies"),
    ("XTIUSD", "XTIUSD", "", "", "USOIL", "energies"),
    ("CL-OIL", "CL-OIL", "", "", "USOIL", "energies"),
    ("CL-OIL.raw", "CL-OIL", "", ".raw", "USOIL", "energies"),
    ("UKOIL", "UKOIL", "", "", "UKOIL", "energies"),
    ("BRENT", "BRENT", "", "", "UKOIL", "energies"),
    ("XBRUSD", "XBRUSD", "", "", "UKOIL", "energies"),
    ("BTCUSD", "BTCUSD", "", "", "BTCUSD", "crypto"),
    ("XBTUSD", "XBTUSD", "", "", "BTCUSD", "crypto"),
    ("Bitcoin", "BITCOIN", "", "", "BTCUSD", "crypto"),
    ("BTCUSDCash", "BTCUSD", "", "Cash", "BTCUSD", "crypto"),
    ("BTCUSDT", "BTCUSDT", "", "", "BTCUSDT", "crypto"),  # tether-quoted: its own base, not an alias
    ("ETHUSD", "ETHUSD", "", "", "ETHUSD", "crypto"),
    ("ETHUSD.raw", "ETHUSD", "", ".raw", "ETHUSD", "crypto"),
    ("AAPL", "AAPL", "", "", "AAPL", "stocks"),
    ("AAPL.US", "AAPL", "", ".US", "AAPL", "stocks"),
    ("#AAPL", "AAPL", "#", "", "AAPL", "stocks"),
    ("AAPL.NAS", "AAPL", "", ".NAS", "AAPL", "stocks"),
    ("GOOGl", "GOOG", "", "l", "GOOG", "stocks"),
    ("FB", "FB", "", "", "META", "stocks"),
]


@pytest.mark.parametrize(("name", "stem", "prefix", "suffix", "base", "category"), CONVENTIONS)
def test_normalize_base_handles_broker_conventions(name, stem, prefix, suffix, base, category):
    assert normalize_base(name) == (stem, prefix, suffix)
    assert canonical_base(name) == base
    assert category_of(name) == category


@pytest.mark.parametrize(
    "name",
    ["", "   ", "###", "HELLO", "GEMINI", "USDUSD", "SOYBEAN", "EURUSDX", "US3O"],
)
def test_normalize_base_rejects_unknown_names(name):
    assert normalize_base(name) is None
    assert canonical_base(name) is None
    assert category_of(name) == "other"


@pytest.mark.parametrize(
    ("name", "suffixes", "expected"),
    [
        ("ZTS.NYSE", (), ("ZTS", "", ".NYSE")),
        ("#ZTS", (), ("ZTS", "#", "")),
        ("ZTSm", (), ("ZTS", "", "m")),
        ("NOR25Cash", (), ("NOR25", "", "Cash")),
        ("Soybean", (), ("SOYBEAN", "", "")),
        ("ZTSm#", (), ("ZTSM", "", "#")),  # ambiguous on its own ...
        ("ZTSm#", ("m#",), ("ZTS", "", "m#")),  # ... settled by the broker's known suffix
        ("EURUSD.pro", ("m#",), ("EURUSD", "", ".pro")),  # known stems win over the hint
        ("", (), None),
        ("-.-", (), None),
    ],
)
def test_split_affixes(name, suffixes, expected):
    assert split_affixes(name, suffixes) == expected


def test_alias_tables_are_consistent():
    assert ALIAS_TO_BASE["GOLD"] == "XAUUSD"
    assert ALIAS_TO_BASE["DJ30"] == ALIAS_TO_BASE["WS30"] == ALIAS_TO_BASE["DOW30"] == "US30"
    assert ALIAS_TO_BASE["CL-OIL"] == "USOIL"
    for base in ALIAS_TO_BASE.values():
        assert ALIAS_TO_BASE[base] == base
        assert BASE_CATEGORY[base] in CATEGORIES
    assert not ({"XAU", "XAG", "XPT", "XPD"} & CURRENCIES)


def test_symbol_folder():
    assert symbol_folder("Forex\\Majors\\EURUSD.pro", "EURUSD.pro") == "Forex\\Majors"
    assert symbol_folder("Crypto", "BTCUSD.raw") == "Crypto"
    assert symbol_folder("", "X") == ""


# --- Detection over realistic broker lists ---

PLAIN_BROKER = [
    sym("EURUSD", "Forex\\EURUSD", "Euro vs US Dollar"),
    sym("GBPUSD", "Forex\\GBPUSD", "Great Britain Pound vs US Dollar"),
    sym("USDJPY", "Forex\\USDJPY", "US Dollar vs Japanese Yen"),
    sym("XAUUSD", "Metals\\XAUUSD", "Gold vs US Dollar", "100"),
    sym("XAGUSD", "Metals\\XAGUSD", "Silver vs US Dollar", "5000"),
    sym("US30", "Indices\\US30", "US Wall Street 30", "1"),
    sym("US500", "Indices\\US500", "US SPX 500", "1"),
    sym("US100", "Indices\\US100", "US Tech 100", "1"),
    sym("BTCUSD", "Crypto\\BTCUSD", "Bitcoin vs US Dollar", "1"),
    sym("ETHUSD", "Crypto\\ETHUSD", "Ethereum vs US Dollar", "1"),
    sym("WTI", "Energies\\WTI", "US Crude Oil", "1000"),
    sym("AAPL", "Stocks\\US\\AAPL", "Apple Inc", "1"),
    sym("ZTS", "Stocks\\US\\ZTS", "Zoetis Inc", "1"),  # not in the tables: placed by its folder
    sym("COCOA", "Softs\\COCOA", "Cocoa"),
]

PRO_BROKER = [
    sym("EURUSD.pro", "Forex\\Majors\\EURUSD.pro", "Euro vs US Dollar"),
    sym("GBPUSD.pro", "Forex\\Majors\\GBPUSD.pro"),
    sym("USDJPY.pro", "Forex\\Majors\\USDJPY.pro"),
    sym("AUDCAD.pro", "Forex\\Minors\\AUDCAD.pro"),
    sym("EURUSD", "Forex\\Standard\\EURUSD"),  # a leftover standard-account symbol
    sym("XAUUSD.pro", "Metals\\XAUUSD.pro", "Gold", "100"),
    sym("XAGUSD.pro", "Metals\\XAGUSD.pro", "Silver", "5000"),
    sym("US30.cash", "Indices\\US30.cash", "Dow Jones", "10"),
    sym("GER40.cash", "Indices\\GER40.cash", "DAX", "10"),
    sym("UK100.cash", "Indices\\UK100.cash", "FTSE", "10"),
    sym("BTCUSD.pro", "Crypto\\BTCUSD.pro", "Bitcoin", "1"),
    sym("XTIUSD.pro", "Energies\\XTIUSD.pro", "WTI", "1000"),
    sym("AAPL.NAS", "Stocks\\US\\AAPL.NAS", "Apple", "1"),
    sym("MSFT.NAS", "Stocks\\US\\MSFT.NAS", "Microsoft", "1"),
]

M_BROKER = [
    sym("EURUSDm", "Forex\\EURUSDm"),
    sym("GBPUSDm", "Forex\\GBPUSDm"),
    sym("USDJPYm", "Forex\\USDJPYm"),
    sym("EURGBPm", "Forex\\EURGBPm"),
    sym("GOLDm", "Metals\\GOLDm", "Gold", "100"),
    sym("XAGUSDm", "Metals\\XAGUSDm", "Silver", "5000"),
    sym("#US30", "Indices\\#US30", "Wall Street", "1"),
    sym("#GER40", "Indices\\#GER40", "Germany 40", "1"),
    sym("#USTEC", "Indices\\#USTEC", "US Tech 100", "1"),
    sym("BTCUSDm", "Crypto\\BTCUSDm", "Bitcoin", "1"),
    sym("USOILm", "Energy\\USOILm", "Crude", "1000"),
    sym("AAPLm", "Stocks\\AAPLm", "Apple", "1"),
    sym("GOLD", "Stocks\\US\\GOLD", "Barrick Gold Corp", "1"),  # the ticker, not the metal
]


def test_detects_plain_broker():
    m = detect_symbols(PLAIN_BROKER)
    assert set(m.categories["forex"]) == {"EURUSD", "GBPUSD", "USDJPY"}
    assert set(m.categories["metals"]) == {"XAUUSD", "XAGUSD"}
    assert set(m.categories["indices"]) == {"US30", "US500", "NAS100"}
    assert m.categories["indices"]["NAS100"].full_symbol == "US100"
    assert m.categories["energies"]["USOIL"].full_symbol == "WTI"
    assert set(m.categories["crypto"]) == {"BTCUSD", "ETHUSD"}
    assert set(m.categories["stocks"]) == {"AAPL", "ZTS"}
    assert m.categories["stocks"]["AAPL"].known and not m.categories["stocks"]["ZTS"].known
    assert set(m.categories["other"]) == {"COCOA"}
    assert m.unrecognised == ("COCOA",)
    assert set(m.dominant_suffix.values()) == {""}
    assert m.get("XAUUSD").contract_size == Decimal("100")


def test_detects_pro_broker_and_prefers_the_dominant_suffix():
    m = detect_symbols(PRO_BROKER)
    assert m.dominant_suffix["forex"] == ".pro"
    assert m.dominant_suffix["indices"] == ".cash"
    assert m.dominant_suffix["stocks"] == ".NAS"
    assert m.categories["forex"]["EURUSD"].full_symbol == "EURUSD.pro"
    assert [d.full_symbol for d in m.variants_of("EURUSD")] == ["EURUSD.pro", "EURUSD"]
    assert m.get("GOLD").full_symbol == "XAUUSD.pro"
    assert m.get("WS30").full_symbol == "US30.cash"
    assert m.get("USOIL").full_symbol == "XTIUSD.pro"
    assert m.find("EURUSD").suffix == ""
    assert m.find("EURUSD.PRO") is None  # names are exact
    assert m.unrecognised == ()


def test_detects_m_broker_with_gold_alias_and_hash_prefix():
    m = detect_symbols(M_BROKER)
    assert m.dominant_suffix["forex"] == "m"
    assert m.dominant_suffix["metals"] == "m"
    assert (m.dominant_prefix["indices"], m.dominant_suffix["indices"]) == ("#", "")
    gold = m.categories["metals"]["XAUUSD"]
    assert (gold.full_symbol, gold.stem, gold.suffix) == ("GOLDm", "GOLD", "m")
    assert m.categories["indices"]["NAS100"].full_symbol == "#USTEC"
    assert m.categories["energies"]["USOIL"].full_symbol == "USOILm"
    # The Stocks folder turns the GOLD alias into Barrick's ticker.
    barrick = m.categories["stocks"]["GOLD"]
    assert (barrick.full_symbol, barrick.category) == ("GOLD", "stocks")
    assert m.get("XAUUSD").full_symbol == "GOLDm"


def test_canonical_spelling_wins_when_a_broker_lists_two_aliases():
    m = detect_symbols(["GOLD", "XAUUSD", "EURUSD"])
    assert [d.full_symbol for d in m.variants_of("XAUUSD")] == ["XAUUSD", "GOLD"]


def test_dominant_suffix_settles_unknown_names_in_the_same_category():
    m = detect_symbols(
        [
            sym("AAPLm#", "Stocks\\AAPLm#"),
            sym("MSFTm#", "Stocks\\MSFTm#"),
            sym("ZTSm#", "Stocks\\ZTSm#"),
            sym("NOR25Cash", "Indices\\NOR25Cash"),
            sym("US30Cash", "Indices\\US30Cash"),
        ]
    )
    assert m.dominant_suffix["stocks"] == "m#"
    zts = m.categories["stocks"]["ZTS"]
    assert (zts.stem, zts.suffix) == ("ZTS", "m#")
    assert m.categories["indices"]["NOR25"].suffix == "Cash"


def test_description_places_unknown_names_without_a_folder():
    m = detect_symbols([{"name": "ZTS.US", "description": "Zoetis Inc"}, {"name": "DOGWIF", "description": "Token"}])
    assert m.categories["stocks"]["ZTS"].full_symbol == "ZTS.US"
    assert m.categories["crypto"]["DOGWIF"].known is False
    assert m.unrecognised == ()


def test_tie_goes_to_plain_names_unless_the_caller_prefers_a_suffix():
    names = ["EURUSD", "EURUSD.pro", "GBPUSD", "GBPUSD.pro", "XAUUSD", "XAUUSD.pro"]
    plain = detect_symbols(names)
    assert plain.dominant_suffix["forex"] == ""
    assert plain.get("EURUSD").full_symbol == "EURUSD"

    pro = detect_symbols(names, prefer_suffix=".pro")
    assert pro.get("EURUSD").full_symbol == "EURUSD.pro"
    assert pro.get("XAUUSD").full_symbol == "XAUUSD.pro"
    assert pro.dominant_suffix["forex"] == ""  # still reports the count, not the choice

    forex_only = detect_symbols(names, prefer_suffix={"forex": ".pro"})
    assert forex_only.get("EURUSD").full_symbol == "EURUSD.pro"
    assert forex_only.get("XAUUSD").full_symbol == "XAUUSD"

    missing = detect_symbols(names, prefer_suffix=".raw")  # nobody uses it: fall back to the count
    assert missing.get("EURUSD").full_symbol == "EURUSD"


def test_accepts_mt5_package_records_and_skips_junk():
    class Mt5Record:  # the MetaTrader5 package calls it trade_contract_size
        name = "US30.cash"
        path = "Indices\\US30.cash"
        description = "Dow"
        trade_contract_size = 10.0

    m = detect_symbols([Mt5Record(), None, 42, {"path": "no name"}, "  ", "EURUSD"])
    assert m.get("US30").contract_size == Decimal("10.0")
    assert m.get("EURUSD").contract_size is None
    assert set(m.symbols) == {m.find("US30.cash"), m.find("EURUSD")}


# --- Payload ---

SEED_BROKER = [
    sym("BTCUSD.raw", "Crypto\\BTCUSD.raw", "Bitcoin vs US Dollar", "1"),
    sym("ETHUSD.raw", "Crypto\\ETHUSD.raw", "Ethereum vs US Dollar", "1"),
    sym("EURUSD", "Forex\\EURUSD", "Euro vs US Dollar"),
    sym("US30", "Indices\\US30", "US Wall Street 30", "1"),
]

SEED_PAYLOAD = {
    "crypto": {
        "BTCUSD": {
            "base_symbol": "BTCUSD",
            "full_symbol": "BTCUSD.raw",
            "suffix": ".raw",
            "description": "Bitcoin vs US Dollar",
            "path": "Crypto",
        },
        "ETHUSD": {
            "base_symbol": "ETHUSD",
            "full_symbol": "ETHUSD.raw",
            "suffix": ".raw",
            "description": "Ethereum vs US Dollar",
            "path": "Crypto",
        },
    },
    "forex": {
        "EURUSD": {
            "base_symbol": "EURUSD",
            "full_symbol": "EURUSD",
            "suffix": "",
            "description": "Euro vs US Dollar",
            "path": "Forex",
        }
    },
    "indices": {
        "US30": {
            "base_symbol": "US30",
            "full_symbol": "US30",
            "suffix": "",
            "description": "US Wall Street 30",
            "path": "Indices",
        }
    },
}


def test_payload_has_the_preflight_shape():
    payload = detect_symbols(SEED_BROKER).to_payload()
    assert payload == SEED_PAYLOAD
    assert json.loads(json.dumps(payload)) == payload


def test_payload_lists_the_preferred_variant_and_aliases_under_the_canonical_base():
    payload = detect_symbols(M_BROKER).to_payload()
    assert payload["metals"]["XAUUSD"]["full_symbol"] == "GOLDm"
    assert payload["stocks"]["GOLD"]["full_symbol"] == "GOLD"
    assert payload["forex"]["EURUSD"] == {
        "base_symbol": "EURUSD",
        "full_symbol": "EURUSDm",
        "suffix": "m",
        "description": "",
        "path": "Forex",
    }
    assert "other" not in payload


def test_from_payload_reads_a_webhook_body_back():
    body = {**SEED_PAYLOAD, "broker_info": {"server": "ICMarkets-Live10"}, "timestamp": "2024-01-15T10:30:45"}
    m = BrokerSymbolMap.from_payload(body)
    assert m.get("BTCUSD").full_symbol == "BTCUSD.raw"
    assert m.dominant_suffix["crypto"] == ".raw"
    assert m.to_payload() == SEED_PAYLOAD
    prefixed = BrokerSymbolMap.from_payload(detect_symbols(M_BROKER).to_payload())
    assert prefixed.find("#US30").prefix == "#"
    assert prefixed.find("#US30").stem == "US30"


# --- Mapping ---


@pytest.fixture()
def pro():
    return detect_symbols(PRO_BROKER)


@pytest.fixture()
def micro():
    return detect_symbols(M_BROKER)


def test_maps_by_suffix_then_alias(pro, micro):
    eurusd = map_symbol("EURUSD.pro", pro, micro)
    assert (eurusd.target_symbol, eurusd.rule, eurusd.base_symbol) == ("EURUSDm", "suffix", "EURUSD")
    assert eurusd.contract_size_ratio == Decimal("1")

    gold = map_symbol("XAUUSD.pro", pro, micro)
    assert (gold.target_symbol, gold.rule, gold.category) == ("GOLDm", "alias", "metals")
    back = map_symbol("GOLDm", micro, pro)
    assert (back.target_symbol, back.rule) == ("XAUUSD.pro", "alias")

    us30 = map_symbol("US30.cash", pro, micro)
    assert (us30.target_symbol, us30.rule) == ("#US30", "suffix")


def test_contract_size_ratio_converts_lots_to_the_same_notional(pro, micro):
    us30 = map_symbol("#US30", micro, pro)  # 1 per lot on the master, 10 on the slave
    assert us30.target_symbol == "US30.cash"
    assert (us30.source_contract_size, us30.target_contract_size) == (Decimal("1"), Decimal("10"))
    assert us30.contract_size_ratio == Decimal("0.1")
    assert map_symbol("US30.cash", pro, micro).contract_size_ratio == Decimal("10")
    assert contract_size_ratio(Decimal("100000"), Decimal("0")) is None
    assert contract_size_ratio(None, Decimal("1")) is None


def test_returns_none_when_the_target_does_not_offer_it(pro, micro):
    assert map_symbol("UK100.cash", pro, micro) is None
    assert map_symbol("AUDCAD.pro", pro, micro) is None
    assert map_symbol("no such thing", pro, micro) is None


def test_a_share_never_maps_to_a_metal(pro, micro):
    assert map_symbol("GOLD", micro, pro) is None  # Barrick: the pro broker has no such share
    assert map_symbol("XAUUSD.pro", pro, micro).target_symbol == "GOLDm"


def test_unlisted_source_symbol_is_parsed(pro, micro):
    mapping = map_symbol("EURGBP.pro", pro, micro)
    assert mapping.target_symbol == "EURGBPm"
    assert mapping.source_contract_size is None and mapping.contract_size_ratio is None


TARGET_WITH_ALIASES = [sym("US30m", "Indices\\US30m", "", "1"), sym("WS30m", "Indices\\WS30m", "", "5")]


def test_precedence_override_then_suffix_then_alias(pro):
    target = detect_symbols(TARGET_WITH_ALIASES)
    assert map_symbol("US30.cash", pro, target).target_symbol == "US30m"  # suffix rule
    dj30 = map_symbol("DJ30.cash", pro, target)  # alias rule: canonical spelling preferred
    assert (dj30.target_symbol, dj30.rule) == ("US30m", "alias")

    by_base = map_symbol("US30.cash", pro, target, overrides={"US30": "WS30m"})
    assert (by_base.target_symbol, by_base.rule) == ("WS30m", "override")
    assert by_base.contract_size_ratio == Decimal("2")

    exact_first = map_symbol("US30.cash", pro, target, overrides={"us30": "US30m", "US30.cash": "WS30m"})
    assert exact_first.target_symbol == "WS30m"

    by_stem = map_symbol("US30.cash", pro, target, overrides={"US30": "WS30"})  # the target's WS30, any suffix
    assert by_stem.target_symbol == "WS30m"

    # Keys match the exact name, the stem or the canonical base; GOLD is neither for XAUUSD.pro.
    not_a_key = map_symbol("XAUUSD.pro", pro, detect_symbols(M_BROKER), overrides={"GOLD": "XAGUSDm"})
    assert (not_a_key.target_symbol, not_a_key.rule) == ("GOLDm", "alias")
    by_canonical = map_symbol("GOLDm", detect_symbols(M_BROKER), pro, overrides={"XAUUSD": "XAGUSD.pro"})
    assert (by_canonical.target_symbol, by_canonical.rule) == ("XAGUSD.pro", "override")


def test_override_can_block_or_name_an_unlisted_symbol(pro, micro):
    assert map_symbol("EURUSD.pro", pro, micro, overrides={"EURUSD": ""}) is None
    assert map_symbol("EURUSD.pro", pro, micro, overrides={"EURUSD.pro": None}) is None
    unlisted = map_symbol("EURUSD.pro", pro, micro, overrides={"EURUSD.pro": "EURUSD.vip"})
    assert (unlisted.target_symbol, unlisted.rule) == ("EURUSD.vip", "override")
    assert unlisted.target_contract_size is None and unlisted.contract_size_ratio is None
    unrelated = map_symbol("GBPUSD.pro", pro, micro, overrides={"EURUSD": ""})
    assert unrelated.target_symbol == "GBPUSDm"


# --- Properties ---

fx_pairs = st.tuples(st.sampled_from(sorted(CURRENCIES)), st.sampled_from(sorted(CURRENCIES))).filter(
    lambda pair: pair[0] != pair[1]
)
metal_pairs = st.tuples(st.sampled_from(sorted(METAL_CODES)), st.sampled_from(sorted(CURRENCIES)))
crypto_pairs = st.tuples(st.sampled_from(sorted(CRYPTO_COINS)), st.sampled_from(CRYPTO_QUOTES)).filter(
    lambda pair: pair[0] != pair[1]
)
bases = st.one_of(
    st.sampled_from(sorted(ALIAS_TO_BASE)),
    st.one_of(fx_pairs, metal_pairs, crypto_pairs).map("".join),
)
suffixes = st.one_of(
    st.just(""),
    st.tuples(st.sampled_from(".-_"), st.text(string.ascii_letters + string.digits, min_size=1, max_size=5)).map(
        "".join
    ),
    st.sampled_from(string.ascii_lowercase),
    st.sampled_from(["+", "#", "Cash", "pro", "ecn", "micro", "-ECN", ".cash", "m+"]),
)
prefixes = st.sampled_from(["", "#", ".", "_"])


@FAST
@given(base=bases, prefix=prefixes, suffix=suffixes)
def test_normalize_recovers_base_and_affixes(base, prefix, suffix):
    name = prefix + base + suffix
    assert normalize_base(name) == (base, prefix, suffix)
    expected_base = ALIAS_TO_BASE.get(base) or canonical_base(base)
    assert expected_base is not None and canonical_base(name) == expected_base
    assert category_of(name) == category_of(base) != "other"


def _broker(names_bases: list[str], prefix: str, suffix: str) -> list[str]:
    return [prefix + base + suffix for base in names_bases]


@FAST
@given(
    chosen=st.lists(bases, min_size=1, max_size=12, unique=True),
    a=st.tuples(prefixes, suffixes),
    b=st.tuples(prefixes, suffixes),
)
def test_mapping_round_trips_between_conventions(chosen, a, b):
    source = detect_symbols(_broker(chosen, *a))
    target = detect_symbols(_broker(chosen, *b))
    for base in chosen:
        there = map_symbol(a[0] + base + a[1], source, target)
        assert there is not None and there.target_symbol == b[0] + base + b[1]
        back = map_symbol(there.target_symbol, target, source)
        assert back is not None and back.target_symbol == a[0] + base + a[1]


names_with_context = st.tuples(
    st.one_of(st.tuples(prefixes, bases, suffixes).map("".join), st.text(max_size=12)),
    st.sampled_from(["", "Forex", "Stocks\\US", "Indices", "Crypto", "Misc"]),
    st.sampled_from(["", "Apple Inc", "Bitcoin", "Gold"]),
)


@FAST
@given(entries=st.lists(names_with_context, max_size=25), data=st.data())
def test_detection_does_not_depend_on_order(entries, data):
    records = [{"name": name, "path": path, "description": description} for name, path, description in entries]
    shuffled = data.draw(st.permutations(records))
    assert detect_symbols(shuffled) == detect_symbols(records)
    assert detect_symbols(shuffled).to_payload() == detect_symbols(records).to_payload()


@FAST
@given(text=st.text(), others=st.lists(st.text(max_size=8), max_size=3))
def test_arbitrary_text_never_raises(text, others):
    normalize_base(text)
    split_affixes(text, others)
    category_of(text)
    canonical_base(text)
    broker = detect_symbols([text, *others])
    json.dumps(broker.to_payload())
    map_symbol(text, broker, broker, overrides={o: o for o in others})
    BrokerSymbolMap.from_payload({"forex": {text: {"full_symbol": text, "suffix": others[0] if others else ""}}})
