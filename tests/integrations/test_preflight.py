"""Symbol pre-flight on the simulated server and on a terminal (stand-in), with S3 on moto's server mode."""

from __future__ import annotations

import json
from decimal import Decimal

import boto3
import pytest
from django.core.management import CommandError, call_command

from accounts.services import trading_account_create
from integrations.choices import PreflightStatus
from integrations.models import PreflightResult, WebhookDelivery
from integrations.preflight import chart_template, parse_login_ini, startup_ini, with_password
from integrations.selectors import broker_symbol_map
from integrations.services.preflight import preflight_run
from integrations.services.webhooks import webhook_endpoint_create
from mt5bridge.simulated import create_account
from tests.mt5bridge import mt5_standin
from tests.personas import PASSWORD as LOGIN_PASSWORD
from tests.personas import api_client_for, next_login

pytestmark = pytest.mark.django_db
PASSWORD = "Live-pass-77"
STANDIN_PASSWORD = "standin-pass-1"


@pytest.fixture
def live_account(owner):
    """An account on MetaSim-Live, whose symbols carry the ".pro" suffix (indices ".cash")."""
    login = next_login()
    create_account(login=login, password=PASSWORD, server="MetaSim-Live", balance=Decimal("5000"))
    return trading_account_create(owner=owner, login=login, password=PASSWORD, server="MetaSim-Live", sync_now=False)


@pytest.fixture
def terminal_account(owner, settings, tmp_path):
    settings.MT5_TERMINAL_MODULE = "tests.mt5bridge.mt5_standin"
    settings.MT5_TERMINAL_PATH = ""
    mt5_standin.reset()
    login = 61_000_001
    mt5_standin.add_account(login, STANDIN_PASSWORD, "ICMarkets-Live10", company="IC Markets")
    for name, path, description in [
        ("BTCUSD.raw", "Crypto\\BTCUSD.raw", "Bitcoin vs US Dollar"),
        ("ETHUSD.raw", "Crypto\\ETHUSD.raw", "Ethereum vs US Dollar"),
        ("EURUSD", "Forex\\EURUSD", "Euro vs US Dollar"),
        ("US30", "Indices\\US30", "US Wall Street 30"),
    ]:
        mt5_standin.add_symbol(name, path=path, description=description)
    data = tmp_path / "Terminal" / "D0E8209F77C8CF37AD8BF550E51FF075"
    (data / "Config").mkdir(parents=True)
    (data / "Config" / "servers.dat").write_bytes(b"\x00servers" * 100)
    settings.PREFLIGHT_TERMINAL_DATA_PATH = str(data)
    account = trading_account_create(
        owner=owner,
        login=login,
        password=STANDIN_PASSWORD,
        server="ICMarkets-Live10",
        gateway_kind="terminal",
        sync_now=False,
    )
    yield account
    mt5_standin.reset()


# --- Pure builders ---


def test_chart_template_loads_the_ea_on_symbol_and_timeframe():
    text = chart_template(symbol="BTCUSD.raw", period="H1", ea_name="MT5BackOfficeEA")
    lines = text.split("\r\n")
    assert lines[:3] == ["<chart>", "symbol=BTCUSD.raw", "period=60"]
    assert "name=MT5BackOfficeEA" in lines and "path=Experts\\MT5BackOfficeEA.ex5" in lines
    assert "expertmode=1" in lines and lines[-2] == "</chart>"


def test_startup_ini_has_the_documented_sections_and_no_password_by_default():
    ini = startup_ini(
        login=123,
        server="Broker-Live",
        symbol="EURUSD.pro",
        period="M15",
        ea_name="MT5BackOfficeEA",
        template_name="MT5BackOfficeEA.tpl",
    )
    assert "[Common]\r\nLogin=123\r\nServer=Broker-Live" in ini
    assert "[Experts]\r\nEnabled=1\r\nAllowLiveTrading=1" in ini
    assert (
        "[StartUp]\r\nExpert=MT5BackOfficeEA\r\nSymbol=EURUSD.pro\r\nPeriod=M15\r\nTemplate=MT5BackOfficeEA.tpl"
    ) in ini
    assert "Password" not in ini
    assert "Login=123\r\nPassword=s3cret\r\nServer=" in with_password(ini, "s3cret")


def test_login_ini_in_the_seeds_bare_form_and_in_mt5_form():
    assert parse_login_ini("login=12345678\npassword=SecretPass\nbroker=IC Markets\n") == {
        "login": "12345678",
        "password": "SecretPass",
        "broker": "IC Markets",
    }
    assert parse_login_ini("[Common]\nLogin=5\nServer=X-Live\n")["server"] == "X-Live"


# --- On the simulated server ---


def test_preflight_detects_suffixes_per_category_and_stores_the_files(live_account):
    result = preflight_run(account=live_account)
    assert result.status == PreflightStatus.OK, result.warnings
    btc = result.payload["crypto"]["BTCUSD"]
    assert btc == {
        "base_symbol": "BTCUSD",
        "full_symbol": "BTCUSD.pro",
        "suffix": ".pro",
        "description": "Bitcoin vs US Dollar",
        "path": "Crypto",
    }
    assert result.payload["indices"]["US30"]["suffix"] == ".cash"
    assert result.payload["broker_info"]["server"] == "MetaSim-Live"
    assert result.payload["servers_dat"] == {"path": None, "found": False}  # only terminals have one
    assert "timestamp" in result.payload
    assert "symbol=BTCUSD.pro" in result.template and "Symbol=BTCUSD.pro" in result.startup_ini
    assert PASSWORD not in result.startup_ini and PASSWORD not in json.dumps(result.payload)


def test_the_result_feeds_the_copy_engines_symbol_map(live_account):
    assert broker_symbol_map(live_account) is None
    preflight_run(account=live_account)
    assert broker_symbol_map(live_account).get("EURUSD").full_symbol == "EURUSD.pro"


def test_a_missing_chart_symbol_falls_back_with_a_warning(live_account, settings):
    settings.PREFLIGHT_CHART_SYMBOL = "NOPEUSD"
    result = preflight_run(account=live_account)
    assert result.status == PreflightStatus.PARTIAL and result.chart_symbol == "EURUSD.pro"
    assert "NOPEUSD is not offered" in result.warnings[0]


def test_refused_password_is_a_failed_result(live_account):
    from mt5bridge.simulated import change_password

    change_password(live_account.login, "changed-elsewhere-1")
    result = preflight_run(account=live_account)
    assert result.status == PreflightStatus.FAILED and "refused" in result.error
    assert broker_symbol_map(live_account) is None


def test_webhook_receives_the_payload(live_account, receiver, settings):
    settings.PREFLIGHT_WEBHOOK_URL = receiver.url + "/mt5/symbols"
    result = preflight_run(account=live_account)
    sent = json.loads(receiver.requests[0]["body"])
    assert sent["crypto"]["BTCUSD"]["full_symbol"] == "BTCUSD.pro"
    assert result.payload["webhook"]["ok"] is True and result.payload["webhook"]["status_code"] == 200


def test_webhook_down_is_reported_and_the_result_still_kept(live_account, settings):
    settings.PREFLIGHT_WEBHOOK_URL = "http://127.0.0.1:9/mt5/symbols"
    result = preflight_run(account=live_account)
    assert result.status == PreflightStatus.PARTIAL
    assert result.payload["webhook"]["ok"] is False and "webhook" in result.warnings[0]
    assert result.payload["crypto"]["BTCUSD"]["full_symbol"] == "BTCUSD.pro"


def test_preflight_done_is_emitted_to_subscribed_endpoints(live_account, receiver):
    webhook_endpoint_create(url=receiver.url, events=["preflight.done"])
    preflight_run(account=live_account)
    assert WebhookDelivery.objects.get().event == "preflight.done"


# --- On a terminal: servers.dat and S3 ---


def test_terminal_preflight_uploads_servers_dat_to_s3(terminal_account, settings, s3_server, aws_credentials):
    settings.AWS_S3_ENDPOINT_URL = s3_server
    settings.PREFLIGHT_S3_BUCKET = "my-mt5-configs"
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="eu-central-1")
    s3.create_bucket(Bucket="my-mt5-configs", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    result = preflight_run(account=terminal_account)
    assert result.status == PreflightStatus.OK, result.warnings
    upload = result.payload["servers_dat_s3"]
    assert upload["uploaded"] is True and upload["key"] == f"mt5-configs/{terminal_account.pk}/servers.dat"
    stored = s3.get_object(Bucket="my-mt5-configs", Key=upload["key"])["Body"].read()
    assert stored == b"\x00servers" * 100
    assert result.payload["crypto"]["BTCUSD"]["suffix"] == ".raw"
    assert result.payload["servers_dat"]["found"] is True
    assert "symbol=BTCUSD.raw" in result.template


def test_no_aws_credentials_skips_the_upload_with_a_warning(terminal_account, settings, no_aws_credentials):
    settings.PREFLIGHT_S3_BUCKET = "my-mt5-configs"
    result = preflight_run(account=terminal_account)
    assert result.status == PreflightStatus.PARTIAL
    assert result.payload["servers_dat_s3"]["uploaded"] is False
    assert any("no AWS credentials" in w for w in result.warnings)


def test_missing_servers_dat_is_a_warning(terminal_account, settings, tmp_path):
    settings.PREFLIGHT_TERMINAL_DATA_PATH = str(tmp_path / "empty")
    result = preflight_run(account=terminal_account)
    assert result.status == PreflightStatus.PARTIAL and "servers.dat not found" in result.warnings[0]


# --- Management command ---


def test_command_with_login_ini_writes_json_template_and_ini(tmp_path, live_account):
    config = tmp_path / "login.ini"
    config.write_text(f"login={live_account.login}\npassword={PASSWORD}\nbroker=MetaSim-Live\n")
    out, tpl, ini = tmp_path / "symbols.json", tmp_path / "a.tpl", tmp_path / "a.ini"
    call_command(
        "preflight",
        "--config",
        str(config),
        "--output-json",
        str(out),
        "--template-out",
        str(tpl),
        "--ini-out",
        str(ini),
        "--webhook-url",
        "http://127.0.0.1:9/down",
        "--webhook-timeout",
        "2",
        stdout=__import__("io").StringIO(),
        stderr=__import__("io").StringIO(),
    )
    payload = json.loads(out.read_text())
    assert payload["forex"]["EURUSD"]["full_symbol"] == "EURUSD.pro"  # JSON written although the webhook is down
    assert payload["webhook"]["ok"] is False
    assert "symbol=BTCUSD.pro" in tpl.read_text() and PASSWORD not in ini.read_text()


def test_command_writes_the_password_only_when_asked(tmp_path, live_account):
    config = tmp_path / "login.ini"
    config.write_text(f"login={live_account.login}\npassword={PASSWORD}\n")
    ini = tmp_path / "a.ini"
    call_command(
        "preflight",
        "--config",
        str(config),
        "--server",
        "MetaSim-Live",
        "--ini-out",
        str(ini),
        "--include-password",
        stdout=__import__("io").StringIO(),
    )
    assert f"Password={PASSWORD}" in ini.read_text()


def test_command_refuses_a_wrong_password(tmp_path, live_account):
    config = tmp_path / "login.ini"
    config.write_text(f"login={live_account.login}\npassword=wrong\nserver=MetaSim-Live\n")
    with pytest.raises(CommandError, match="pre-flight failed"):
        call_command("preflight", "--config", str(config))


def test_command_for_a_stored_account_keeps_the_result(live_account):
    call_command("preflight", "--account", str(live_account.pk), stdout=__import__("io").StringIO())
    assert PreflightResult.objects.filter(account=live_account).exists()


# --- API ---


def test_owner_runs_preflight_and_downloads_the_files(live_account):
    client = api_client_for(live_account.owner)
    response = client.post(f"/api/accounts/{live_account.pk}/preflight", {"chart_period": "M15"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["chart_period"] == "M15"
    assert client.get(f"/api/accounts/{live_account.pk}/preflight").json()["chart_symbol"] == "BTCUSD.pro"
    tpl = client.get(f"/api/accounts/{live_account.pk}/preflight/template.tpl")
    assert tpl.status_code == 200 and b"period=15" in tpl.content
    assert tpl["Content-Disposition"] == 'attachment; filename="MT5BackOfficeEA.tpl"'
    ini = client.get(f"/api/accounts/{live_account.pk}/preflight/startup.ini")
    assert b"Period=M15" in ini.content and PASSWORD.encode() not in ini.content
    assert b"Password=<your MT5 password>" in ini.content
    # The password only by POST with the owner's own login password (tests/integrations/test_mt5_password.py).
    with_pw = client.post(
        f"/api/accounts/{live_account.pk}/preflight/startup.ini", {"password": LOGIN_PASSWORD}, format="json"
    )
    assert f"Password={PASSWORD}".encode() in with_pw.content


def test_support_agent_does_not_get_the_password(live_account, support_agent):
    # Who may run a pre-flight is the role matrix's (tests/test_permission_matrix.py); the password is nobody's
    # but the owner's.
    preflight_run(account=live_account)
    client = api_client_for(support_agent)
    url = f"/api/accounts/{live_account.pk}/preflight/startup.ini"
    assert client.get(f"{url}?include_password=true").status_code == 400
    refused = client.post(url, {"password": LOGIN_PASSWORD}, format="json")
    assert refused.status_code == 403 and PASSWORD.encode() not in refused.content


def test_outsider_and_anonymous_get_nothing(live_account, outsider_client, anon_client):
    preflight_run(account=live_account)
    for path in ("preflight", "preflight/template.tpl", "preflight/startup.ini"):
        assert outsider_client.get(f"/api/accounts/{live_account.pk}/{path}").status_code == 404
        assert anon_client.get(f"/api/accounts/{live_account.pk}/{path}").status_code == 401
    assert outsider_client.post(f"/api/accounts/{live_account.pk}/preflight").status_code == 404
    assert anon_client.post(f"/api/accounts/{live_account.pk}/preflight").status_code == 401
    assert PreflightResult.objects.count() == 1


def test_no_result_yet_is_404(owner_client, owned_account):
    response = owner_client.get(f"/api/accounts/{owned_account.pk}/preflight")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_bad_period_is_400(owner_client, owned_account):
    response = owner_client.post(f"/api/accounts/{owned_account.pk}/preflight", {"chart_period": "H2"}, format="json")
    assert response.status_code == 400
