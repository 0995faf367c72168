"""Settings: a malformed environment variable stops start-up with a message naming it; production (DEBUG off,
the default) refuses the development secrets published in the repository."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = (
    "import config.settings as s; print(s.DATABASES['default']['ENGINE'], "
    "s.CACHES['default']['BACKEND'], s.CHANNEL_LAYERS['default']['BACKEND'], s.MT5_GATEWAY)"
)
# The development values in config/settings.py: public, so production must refuse them.
PUBLISHED_SECRET_KEY = "insecure-development-key-only-for-the-embedded-default-do-not-deploy-0123456789"
PUBLISHED_FERNET_KEY = "ZGV2ZWxvcG1lbnQta2V5LW5vdC1mb3ItcHJvZHVjdGk="


def clean_env(**env) -> dict:
    """Nothing of this machine's or the test run's environment (DEBUG=true, DATABASE_URL...): only what is given."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"), **env}


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean_env(**env), capture_output=True, text=True, timeout=60
    )


def load_settings(**env) -> subprocess.CompletedProcess:
    """config.settings in a clean process; DEBUG=true (the local development mode) unless given."""
    return run_python(SUMMARY, **{"DEBUG": "true", **env})


def own_secrets() -> dict:
    from cryptography.fernet import Fernet

    return {"SECRET_KEY": secrets.token_urlsafe(50), "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode()}


@pytest.mark.parametrize(
    "name,value",
    [
        ("DEBUG", "maybe"),
        ("SYNC_INTERVAL_MINUTES", "soon"),
        ("SYNC_INTERVAL_MINUTES", "0"),
        ("MT5_GATEWAY", "telnet"),
        ("DATABASE_URL", "nonsense"),
        ("REDIS_URL", "localhost:6379"),
        ("MT5_SERVER_GATEWAYS", "BrokerA"),
    ],
)
def test_a_malformed_value_stops_start_up_naming_the_variable(name, value):
    result = load_settings(**{name: value})
    assert result.returncode != 0
    assert name in result.stderr


@pytest.mark.parametrize("debug", [{"DEBUG": "false"}, {}])
def test_production_refuses_to_start_without_a_secret_key(debug):
    result = run_python("import config.settings", **debug)
    assert result.returncode != 0 and "SECRET_KEY must be set when DEBUG is false" in result.stderr


def test_debug_true_alone_gives_the_embedded_default():
    result = load_settings()
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "django.core.cache.backends.locmem.LocMemCache",
        "channels.layers.InMemoryChannelLayer",
        "simulated",
    ]


def test_database_and_redis_urls_switch_to_the_real_components():
    result = load_settings(DATABASE_URL="postgres://u@127.0.0.1:5432/x", REDIS_URL="redis://127.0.0.1:6379/3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:3] == [
        "django.db.backends.postgresql",
        "config.cache.RedisCache",
        "channels_redis.pubsub.RedisPubSubChannelLayer",
    ]


def test_secrets_can_come_from_files(tmp_path):
    secret = tmp_path / "key"
    secret.write_text("x" * 60)
    env = {**own_secrets(), "DEBUG": "false", "SECRET_KEY_FILE": str(secret)}
    del env["SECRET_KEY"]
    result = run_python("import config.settings as s; print(len(s.SECRET_KEY))", **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "60"


def test_debug_is_off_when_the_environment_does_not_set_it():
    """Guards the default: DEBUG used to default to true, which also brought the published development keys."""
    result = run_python("import config.settings as s; print(s.DEBUG, s.SESSION_COOKIE_SECURE)", **own_secrets())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]


@pytest.mark.parametrize(
    "name,value",
    [("SECRET_KEY", PUBLISHED_SECRET_KEY), ("FIELD_ENCRYPTION_KEYS", PUBLISHED_FERNET_KEY)],
)
def test_production_refuses_a_published_development_secret_naming_it(name, value):
    """With DEBUG unset (production), start-up refuses the secret key and Fernet key published in the repository."""
    result = run_python("import config.settings", **{**own_secrets(), name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{name} holds a development value published in the repository" in result.stderr


def test_production_refuses_the_published_fernet_key_even_as_an_old_decryption_key():
    from cryptography.fernet import Fernet

    keys = f"{Fernet.generate_key().decode()},{PUBLISHED_FERNET_KEY}"
    result = run_python("import config.settings", **{**own_secrets(), "FIELD_ENCRYPTION_KEYS": keys})
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS holds a development value" in result.stderr


@pytest.mark.parametrize("name", ["SYSTEME_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRET", "MT5_MANAGER_PASSWORD"])
def test_production_refuses_a_published_value_in_any_secret_naming_the_variable(name):
    """A webhook secret (or any setting) set to one of the repository's development values is refused too."""
    # A Stripe API key too: a webhook secret without one is refused for another reason (the test below).
    env = {**own_secrets(), "STRIPE_TEST_SECRET_KEY": "sk_test_own", name: PUBLISHED_SECRET_KEY}
    result = run_python("import config.settings", **env)
    assert result.returncode != 0
    assert f"{name} holds a development value published in the repository" in result.stderr


@pytest.mark.parametrize(
    "env,missing",
    [
        ({}, "STRIPE_TEST_SECRET_KEY"),
        ({"STRIPE_LIVE_MODE": "true", "STRIPE_TEST_SECRET_KEY": "sk_test_own"}, "STRIPE_LIVE_SECRET_KEY"),
    ],
)
def test_a_stripe_webhook_secret_without_an_api_key_stops_start_up_naming_the_variables(env, missing):
    """Guards issue 13 #11: a webhook secret without the Stripe API key of the mode in use started fine and then
    turned every valid Stripe event into a 500."""
    result = load_settings(STRIPE_WEBHOOK_SECRET="whsec_own", **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "STRIPE_WEBHOOK_SECRET is set but the Stripe API key is not" in result.stderr and missing in result.stderr


@pytest.mark.parametrize(
    "env",
    [
        {"STRIPE_WEBHOOK_SECRET": "whsec_own", "STRIPE_TEST_SECRET_KEY": "sk_test_own"},
        {"STRIPE_WEBHOOK_SECRET": "whsec_own", "STRIPE_LIVE_MODE": "true", "STRIPE_LIVE_SECRET_KEY": "sk_live_own"},
        {"STRIPE_TEST_SECRET_KEY": "sk_test_own"},  # a key alone
        {},  # local mode
    ],
)
def test_stripe_settings_with_a_key_or_without_a_webhook_secret_start(env):
    result = load_settings(**env)
    assert result.returncode == 0, result.stderr


def test_manage_py_check_refuses_the_published_keys_when_debug_is_unset():
    """What an operator sees: `manage.py check` (any command) stops, naming the variable."""
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=clean_env(SECRET_KEY=PUBLISHED_SECRET_KEY, FIELD_ENCRYPTION_KEYS=PUBLISHED_FERNET_KEY),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS holds a development value published in the repository" in result.stderr


def test_check_deploy_is_clean_with_secrets_of_ones_own():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=clean_env(**own_secrets(), ALLOWED_HOSTS="backoffice.example.com"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_env_example_publishes_no_secret_and_says_debug_false():
    """.env.example is copied into deployments: every secret in it stays empty, and DEBUG is false there."""
    values = dict(re.findall(r"^([A-Z0-9_]+)=(\S*)", (ROOT / ".env.example").read_text(), re.M))
    secret_names = [n for n in values if re.search(r"SECRET|PASSWORD|_KEYS?$|TOKEN$", n) and not n.endswith("_FILE")]
    assert {"SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "STRIPE_WEBHOOK_SECRET", "SYSTEME_WEBHOOK_SECRET"} <= set(
        secret_names
    )
    assert {n: values[n] for n in secret_names if values[n]} == {}
    assert values["DEBUG"] == "false"


def test_env_example_documents_every_variable_the_settings_read():
    source = (ROOT / "config" / "settings.py").read_text()
    read = set(re.findall(r'env(?:str|bool|int|float|list|choice|mapping)\(\s*"([A-Z0-9_]+)"', source))
    documented = set(re.findall(r"^([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read, "no variables found: the pattern no longer matches settings.py"
    assert read - documented == set()
