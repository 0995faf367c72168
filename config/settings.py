"""Settings for the MT5 back office: one module, every knob an environment variable.

With no environment at all this is the embedded default (SQLite, local-memory cache,
in-memory channel layer, a filesystem Celery broker, the simulated MT5). Set DATABASE_URL
and REDIS_URL for PostgreSQL and Redis. A malformed value stops start-up with a message
that names the variable. Every variable is listed in .env.example.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from config.admin_theme import unfold_settings
from config.env import (
    ENV,
    envbool,
    envchoice,
    envfloat,
    envint,
    envlist,
    envmapping,
    envmoney,
    envstr,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# --- Django ---------------------------------------------------------------------------

# Off unless the environment turns it on: the local demo (scripts/run.sh) and the tests set DEBUG=true.
DEBUG = envbool("DEBUG", False)
# Development values of secrets (every _DEV_* constant) are published in this repository: they are the defaults
# only with DEBUG on, and start-up refuses them with DEBUG off (the check is at the end of this module).
_DEV_SECRET = "insecure-development-key-only-for-the-embedded-default-do-not-deploy-0123456789"
SECRET_KEY = envstr("SECRET_KEY", _DEV_SECRET if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY must be set when DEBUG is false (for local development set DEBUG=true, or run scripts/run.sh)"
    )
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")
SITE_URL = envstr("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "daphne",
    # The admin's theme (django-unfold), before django.contrib.admin so its templates win; BasicAppConfig leaves
    # admin.site to BackOfficeAdminConfig (the default config would replace it and drop the second factor).
    "unfold.apps.BasicAppConfig",
    "config.apps.BackOfficeAdminConfig",  # django.contrib.admin with the site in accounts.admin_site (second factor)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files served from here, not from a CDN
    "django_celery_beat",
    "guardian",
    "axes",
    "djstripe",
    "channels",
    "accounts",
    "entitlements",
    "mt5bridge",
    "mt5bridge.simulated",  # the simulated MT5 server (tables mt5bridge_sim*), behind the gateway only
    "copytrading",
    "bonuses",
    "billing",
    "integrations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.csp.CSPMiddleware",  # Content-Security-Policy header (django-csp), see CONTENT_SECURITY_POLICY
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): signed in with a second factor
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "config.throttling.LoginIPGuard",  # refuses an IP with too many failed logins across usernames
    "accounts.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
LOGIN_URL = "admin:login"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = envstr("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
WHITENOISE_USE_FINDERS = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = BASE_DIR / "var" / "media"

EMAIL_BACKEND = envstr("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "backoffice@localhost")

# Production hardening follows DEBUG so `check --deploy` is clean when DEBUG is false.
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^health/"]  # probes of the load balancer or orchestrator speak plain HTTP to the process
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if envbool("BEHIND_TLS_PROXY", False) else None
# Reverse proxies in front of the app that append to X-Forwarded-For. 0: the client is REMOTE_ADDR and the header is
# ignored (anyone can write it). N: the N-th address from the right (config.net.client_ip, DRF throttles, axes).
NUM_PROXIES = envint("NUM_PROXIES", 0, minimum=0)
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp 4): scripts and styles only from this site's static files, or inline ones
# carrying the request's nonce ({{ request.csp_nonce }}); no inline style attributes, no eval, no plugins, no
# framing. config.csp adds ws(s)://<this host> to connect-src for the live pages' WebSockets. Forms post here
# only, plus Stripe's Checkout and Portal, where the billing pages' forms are redirected.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF, "https://checkout.stripe.com", "https://billing.stripe.com"],
    },
}

LOG_LEVEL = envchoice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- Database -------------------------------------------------------------------------

DATABASE_URL = envstr("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}")
try:
    _db = ENV.db_url_config(DATABASE_URL)
except Exception as exc:  # django-environ raises several types for a bad URL
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from exc
if not _db.get("ENGINE"):
    raise ImproperlyConfigured(
        f"DATABASE_URL is not a database URL this project knows: {DATABASE_URL.split('://')[0]!r}"
    )
if _db["ENGINE"] == "django.db.backends.postgresql":
    _db["CONN_MAX_AGE"] = envint("DATABASE_CONN_MAX_AGE", 60, minimum=0)
    _db["CONN_HEALTH_CHECKS"] = True
elif _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web process and the workers share the file.
    _db["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DATABASES = {"default": _db}

# --- Cache ----------------------------------------------------------------------------

REDIS_URL = envstr("REDIS_URL")
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL={REDIS_URL!r} must start with redis://, rediss:// or unix://")
# Parallel test workers share one Redis; the worker id keeps their keys apart.
CACHE_KEY_PREFIX = envstr("CACHE_KEY_PREFIX", "mt5bo") + os.environ.get("PYTEST_XDIST_WORKER", "")
CACHES = {
    "default": (
        {
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "KEY_PREFIX": CACHE_KEY_PREFIX}
    )
}

# Sessions are read on every authenticated request: from the cache (Redis), written through to the
# database so a cache flush logs nobody out.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# --- Celery ---------------------------------------------------------------------------

CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _queue_dir = BASE_DIR / "var" / "celery-broker"
    _queue_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
    }
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A task taken by a worker that died goes back to the queue after this long (Redis broker; config/celery.py): it must
# outlast the longest task and the furthest countdown, or a task runs twice (docs/reliability.md).
BROKER_VISIBILITY_TIMEOUT = envint("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1)

# --- Channels -------------------------------------------------------------------------

CHANNEL_LAYERS = {
    "default": (
        {
            # Redis pub/sub: one message per group per server process, which hands it to its own sockets
            # (the list-based layer writes one copy per socket into Redis). Live updates are best effort
            # either way; a page catches up from the database when it (re)connects.
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": f"{CACHE_KEY_PREFIX}:asgi"},
        }
        if REDIS_URL
        else {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    )
}

# --- DRF ------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerJWTAuthentication",  # programs: Authorization: Bearer <access> (POST /api/auth/login)
        "rest_framework.authentication.SessionAuthentication",  # the web app's own calls
    ],
    # Who may call what: each view declares its capability, looked up in the role matrix (accounts.roles).
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.MatrixPermission"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.BoundedLimitOffsetPagination",  # limit and offset bounded
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.errors.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "config.throttling.UserRateThrottle",  # DRF's rate, counted in one Redis round trip
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": envstr("THROTTLE_ANON", "60/min"),
        "user": envstr("THROTTLE_USER", "1200/min"),
        "auth": envstr("THROTTLE_AUTH", "10/min"),
        "sync": envstr("THROTTLE_SYNC", "30/min"),
        "ea": envstr("THROTTLE_EA", "600/min"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "NUM_PROXIES": NUM_PROXIES,  # throttles identify anonymous callers by config.net's rule, not the raw header
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MT5 back office API",
    "DESCRIPTION": "Accounts, analytics, copy trading, bonuses, billing and integrations for MetaTrader 5.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from drf-spectacular-sidecar (this site's static files): the CSP loads nothing from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Every operation documents the error answers it can give (config/openapi.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi.add_error_responses",
    ],
    # One name per choice set that several apps share a field name for.
    "ENUM_NAME_OVERRIDES": {
        "SideEnum": "copytrading.choices.Side",
        "RuleKindEnum": "copytrading.choices.RuleKind",
        "RuleActionEnum": "copytrading.choices.RuleAction",
        "CampaignStatusEnum": "bonuses.choices.CampaignStatus",
        "BonusStatusEnum": "bonuses.choices.BonusStatus",
        "ApprovalStatusEnum": "bonuses.choices.ApprovalStatus",
        "BonusTriggerEnum": "bonuses.choices.Trigger",
        "ReconciliationRunTriggerEnum": "bonuses.reconciliation_models.RunTrigger",
    },
}
# People's API tokens (djangorestframework-simplejwt): a short access token, a refresh token used once
# (each refresh returns a new pair and blacklists the old one) and blacklisted at logout.
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=envint("JWT_ACCESS_MINUTES", 60, minimum=1)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=envint("JWT_REFRESH_DAYS", 7, minimum=1)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "CHECK_REVOKE_TOKEN": True,  # tokens carry a hash of the password hash: a password change ends them all
}

# --- Security: lockout and secrets ----------------------------------------------------

AXES_FAILURE_LIMIT = envint("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = envfloat("AXES_COOLOFF_HOURS", 0.25, minimum=0)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLED = envbool("AXES_ENABLED", True)
AXES_LOCKOUT_CALLABLE = "config.errors.lockout_response"
AXES_USERNAME_CALLABLE = "config.errors.axes_username"
# The client IP behind NUM_PROXIES trusted proxies (django-ipware, axes' other source, is not installed).
AXES_CLIENT_IP_CALLABLE = "config.net.client_ip"
# Across usernames: an IP with this many failed logins is refused (429) until the window from its first failure ends.
LOGIN_FAILURES_PER_IP = envint("LOGIN_FAILURES_PER_IP", 20, minimum=1)
LOGIN_FAILURES_PER_IP_MINUTES = envint("LOGIN_FAILURES_PER_IP_MINUTES", 15, minimum=1)

# Second factor at the admin login (django-otp: an authenticator app, plus backup codes). Staff who enrolled
# always give a code; with OTP_REQUIRED_FOR_STAFF every staff user must enrol before any other admin page.
OTP_REQUIRED_FOR_STAFF = envbool("OTP_REQUIRED_FOR_STAFF", False)
OTP_TOTP_ISSUER = envstr("OTP_TOTP_ISSUER", "MT5 back office")  # the name authenticator apps show
# The device admins never show a key, a QR code or backup codes: whoever may view devices must not be able to
# copy someone's second factor. Staff enrol themselves at /admin/two-factor/; the admin only deletes devices.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# MultiFernet keys for secrets at rest (MT5 passwords...). The first key encrypts; all decrypt.
# Rotation: put a new key first, run `manage.py rotate_secrets`, then drop the old key.
_DEV_FERNET = "ZGV2ZWxvcG1lbnQta2V5LW5vdC1mb3ItcHJvZHVjdGk="
FIELD_ENCRYPTION_KEYS = envlist("FIELD_ENCRYPTION_KEYS", _DEV_FERNET if DEBUG else "")
if not FIELD_ENCRYPTION_KEYS:
    raise ImproperlyConfigured(
        'FIELD_ENCRYPTION_KEYS must be set when DEBUG is false (generate one: python -c "from cryptography.fernet '
        'import Fernet; print(Fernet.generate_key().decode())")'
    )

# --- Stripe ---------------------------------------------------------------------------

STRIPE_LIVE_MODE = envbool("STRIPE_LIVE_MODE", False)
STRIPE_TEST_SECRET_KEY = envstr("STRIPE_TEST_SECRET_KEY")
STRIPE_LIVE_SECRET_KEY = envstr("STRIPE_LIVE_SECRET_KEY")
DJSTRIPE_WEBHOOK_SECRET = envstr("STRIPE_WEBHOOK_SECRET")
if DJSTRIPE_WEBHOOK_SECRET and not (STRIPE_LIVE_SECRET_KEY if STRIPE_LIVE_MODE else STRIPE_TEST_SECRET_KEY):
    # dj-stripe would verify the signature and then fail to process the event without an API key: every valid
    # webhook a 500 (and Stripe retrying it for days). Billing without a key is local mode, which takes no webhooks.
    raise ImproperlyConfigured(
        "STRIPE_WEBHOOK_SECRET is set but the Stripe API key is not: set "
        f"{'STRIPE_LIVE_SECRET_KEY' if STRIPE_LIVE_MODE else 'STRIPE_TEST_SECRET_KEY'} "
        f"(STRIPE_LIVE_MODE={'true' if STRIPE_LIVE_MODE else 'false'}), or unset STRIPE_WEBHOOK_SECRET for local mode"
    )
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_USE_NATIVE_JSONFIELD = True
BILLING_DEFAULT_PLAN = envstr("BILLING_DEFAULT_PLAN", "pro")
# Local billing events (docs/billing.md): events signed with this secret are applied without Stripe. Local mode only.
BILLING_LOCAL_WEBHOOK_SECRET = envstr("BILLING_LOCAL_WEBHOOK_SECRET")
if BILLING_LOCAL_WEBHOOK_SECRET and (STRIPE_TEST_SECRET_KEY or STRIPE_LIVE_SECRET_KEY):
    raise ImproperlyConfigured(
        "BILLING_LOCAL_WEBHOOK_SECRET is for local mode (no Stripe key) only, but "
        f"{'STRIPE_TEST_SECRET_KEY' if STRIPE_TEST_SECRET_KEY else 'STRIPE_LIVE_SECRET_KEY'} is set: unset "
        "BILLING_LOCAL_WEBHOOK_SECRET to use Stripe's webhooks (STRIPE_WEBHOOK_SECRET), or unset the Stripe keys"
    )

# --- MT5 ------------------------------------------------------------------------------

MT5_GATEWAY = envchoice("MT5_GATEWAY", "simulated", ("simulated", "terminal", "manager"))
MT5_SERVER_GATEWAYS = envmapping("MT5_SERVER_GATEWAYS")  # server=kind overrides
for _server, _kind in MT5_SERVER_GATEWAYS.items():
    if _kind not in ("simulated", "terminal", "manager"):
        raise ImproperlyConfigured(f"MT5_SERVER_GATEWAYS: {_server}={_kind!r} is not a gateway kind")
MT5_MANAGER_URL = envstr("MT5_MANAGER_URL", "http://127.0.0.1:8443")
MT5_MANAGER_LOGIN = envint("MT5_MANAGER_LOGIN", 1000)
MT5_MANAGER_PASSWORD = envstr("MT5_MANAGER_PASSWORD")
MT5_MANAGER_TIMEOUT = envfloat("MT5_MANAGER_TIMEOUT", 5.0, minimum=0.1)
MT5_MANAGER_RETRIES = envint("MT5_MANAGER_RETRIES", 3, minimum=0)
MT5_TERMINAL_MODULE = envstr("MT5_TERMINAL_MODULE", "MetaTrader5")
MT5_TERMINAL_PATH = envstr("MT5_TERMINAL_PATH")
MT5_TERMINAL_PATHS = envlist("MT5_TERMINAL_PATHS")  # one Celery queue per terminal
MT5_TERMINAL_TIMEOUT_MS = envint("MT5_TERMINAL_TIMEOUT_MS", 60000, minimum=1000)
MT5_SIM_SEED = envint("MT5_SIM_SEED", 20261122)

SYNC_INTERVAL_MINUTES = envint("SYNC_INTERVAL_MINUTES", 15, minimum=1)
SYNC_MAX_CONSECUTIVE_ERRORS = envint("SYNC_MAX_CONSECUTIVE_ERRORS", 5, minimum=1)
# An account whose newest data (its last sync or its EA's last heartbeat) is older than this is shown "stale since"
# that time in the web app, the API (data_age) and the admin (accounts/freshness.py). Default: two sync intervals.
ACCOUNT_STALE_SECONDS = envint("ACCOUNT_STALE_SECONDS", 2 * SYNC_INTERVAL_MINUTES * 60, minimum=1)

# --- Integrations ---------------------------------------------------------------------

SYSTEME_API_URL = envstr("SYSTEME_API_URL", "https://api.systeme.io")
SYSTEME_API_KEY = envstr("SYSTEME_API_KEY")
SYSTEME_WEBHOOK_SECRET = envstr("SYSTEME_WEBHOOK_SECRET")
# Inbound signatures "t=<unix>,v1=<hex>" must be this fresh; Systeme.io's own body-only signature carries no time
# and is accepted unless SYSTEME_WEBHOOK_REQUIRE_TIMESTAMP (its replays are caught by the signed body's key).
SYSTEME_WEBHOOK_TOLERANCE = envint("SYSTEME_WEBHOOK_TOLERANCE", 300, minimum=1)  # seconds
SYSTEME_WEBHOOK_REQUIRE_TIMESTAMP = envbool("SYSTEME_WEBHOOK_REQUIRE_TIMESTAMP", False)
AWS_S3_ENDPOINT_URL = envstr("AWS_S3_ENDPOINT_URL")

# --- Web UI ---------------------------------------------------------------------------

# Front-end libraries come from the npm registry at setup time (scripts/setup.sh runs `npm ci`)
# and are served from node_modules under /static/vendor/.
STATICFILES_DIRS = [("vendor", BASE_DIR / "node_modules")]
LOGIN_URL = envstr("LOGIN_URL", "login")
LOGIN_REDIRECT_URL = envstr("LOGIN_REDIRECT_URL", "dashboard")
LOGOUT_REDIRECT_URL = envstr("LOGOUT_REDIRECT_URL", "login")
# The admin (django-unfold): BROKER_NAME names the product in its header and page titles, ADMIN_SITE_HEADER
# (when set) is the whole header; the rest of the theme's settings are in config/admin_theme.py.
BROKER_NAME = envstr("BROKER_NAME") or "MT5 back office"
ADMIN_SITE_HEADER = envstr("ADMIN_SITE_HEADER") or BROKER_NAME
UNFOLD = unfold_settings(ADMIN_SITE_HEADER)
# MT5 statement import: a request larger than the upload limit is refused before its body is read, and a
# report may make the importer build at most this many rows and cells, however many it declares or expands
# (XLSX dimension, HTML colspan); an XLSX may unzip to at most STATEMENT_MAX_UNZIPPED_BYTES.
STATEMENT_MAX_UPLOAD_BYTES = envint("STATEMENT_MAX_UPLOAD_BYTES", 10 * 1024 * 1024, minimum=1024)
STATEMENT_MAX_ROWS = envint("STATEMENT_MAX_ROWS", 250_000, minimum=100)
STATEMENT_MAX_CELLS = envint("STATEMENT_MAX_CELLS", 2_500_000, minimum=1000)
STATEMENT_MAX_UNZIPPED_BYTES = envint("STATEMENT_MAX_UNZIPPED_BYTES", 100 * 1024 * 1024, minimum=1024 * 1024)
LIVE_PRICES_INTERVAL = envfloat("LIVE_PRICES_INTERVAL", 1.0, minimum=0.1)

# --- Copy trading -----------------------------------------------------------------------

# Magic number the slave EA puts on every copied order (the copy id travels in the comment).
COPY_MAGIC = envint("COPY_MAGIC", 20_251_122, minimum=0)
# How long a broker's symbol list (for symbol mapping and volume steps) is cached.
COPY_SYMBOLS_CACHE_SECONDS = envint("COPY_SYMBOLS_CACHE_SECONDS", 3600, minimum=1)
# Expiry of web-terminal, template and rule commands that the EA has not fetched.
COPY_COMMAND_EXPIRY_SECONDS = envint("COPY_COMMAND_EXPIRY_SECONDS", 300, minimum=1)

# --- Integrations: Systeme.io client, outbound webhooks, symbol pre-flight --------------
# (SYSTEME_API_URL, SYSTEME_API_KEY, SYSTEME_WEBHOOK_SECRET and AWS_S3_ENDPOINT_URL are above.)

SYSTEME_TIMEOUT = envfloat("SYSTEME_TIMEOUT", 10.0, minimum=0.1)
SYSTEME_RETRIES = envint("SYSTEME_RETRIES", 3, minimum=0)
SYSTEME_RETRY_MAX_WAIT = envfloat("SYSTEME_RETRY_MAX_WAIT", 30.0, minimum=0)  # cap on Retry-After
SYSTEME_FIELD_PREFIX = envstr("SYSTEME_FIELD_PREFIX", "mt5_")  # custom contact field slugs
SYSTEME_SYNC_INTERVAL_MINUTES = envint("SYSTEME_SYNC_INTERVAL_MINUTES", 60, minimum=1)
SYSTEME_RULES_INTERVAL_MINUTES = envint("SYSTEME_RULES_INTERVAL_MINUTES", 15, minimum=1)

WEBHOOK_TIMEOUT = envfloat("WEBHOOK_TIMEOUT", 10.0, minimum=0.1)
WEBHOOK_MAX_ATTEMPTS = envint("WEBHOOK_MAX_ATTEMPTS", 8, minimum=1)
WEBHOOK_BACKOFF_SECONDS = envint("WEBHOOK_BACKOFF_SECONDS", 30, minimum=1)
WEBHOOK_BACKOFF_MAX_SECONDS = envint("WEBHOOK_BACKOFF_MAX_SECONDS", 6 * 3600, minimum=1)
WEBHOOK_DISABLE_AFTER_FAILURES = envint("WEBHOOK_DISABLE_AFTER_FAILURES", 15, minimum=1)
# Deliver to loopback, private, link-local, CGNAT ... addresses too (checked when a delivery is sent). Off unless
# set, in development too: a local receiver needs WEBHOOK_ALLOW_PRIVATE_URLS=true.
WEBHOOK_ALLOW_PRIVATE_URLS = envbool("WEBHOOK_ALLOW_PRIVATE_URLS", False)

PREFLIGHT_S3_BUCKET = envstr("PREFLIGHT_S3_BUCKET")
PREFLIGHT_S3_PREFIX = envstr("PREFLIGHT_S3_PREFIX", "mt5-configs/")
PREFLIGHT_S3_REGION = envstr("PREFLIGHT_S3_REGION", "eu-central-1")
PREFLIGHT_WEBHOOK_URL = envstr("PREFLIGHT_WEBHOOK_URL")
PREFLIGHT_WEBHOOK_TIMEOUT = envfloat("PREFLIGHT_WEBHOOK_TIMEOUT", 10.0, minimum=0.1)
PREFLIGHT_TERMINAL_DATA_PATH = envstr("PREFLIGHT_TERMINAL_DATA_PATH")  # terminal data folder (holds Config/)
PREFLIGHT_CHART_SYMBOL = envstr("PREFLIGHT_CHART_SYMBOL", "BTCUSD")
PREFLIGHT_CHART_PERIOD = envchoice(
    "PREFLIGHT_CHART_PERIOD", "H1", ("M1", "M5", "M15", "M30", "H1", "H4", "D1", "W1", "MN1")
)
PREFLIGHT_EA_NAME = envstr("PREFLIGHT_EA_NAME", "MT5BackOfficeEA")

# --- EA protocol: tokens, heartbeat, command queue (mt5bridge.ea) ------------------------

EA_ONLINE_SECONDS = envint("EA_ONLINE_SECONDS", 10, minimum=1)  # heartbeat younger than this: online
EA_OFFLINE_SECONDS = envint("EA_OFFLINE_SECONDS", 60, minimum=1)  # older than this: offline (between: stale)
EA_BEAT_MS = envint("EA_BEAT_MS", 1000, minimum=100)  # interval the server asks EAs to beat at
EA_PERSIST_SECONDS = envint("EA_PERSIST_SECONDS", 60, minimum=1)  # state to PostgreSQL at least this often
EA_MAX_BODY_BYTES = envint("EA_MAX_BODY_BYTES", 1_000_000, minimum=1024)
EA_THROTTLE_PER_SECOND = envint("EA_THROTTLE_PER_SECOND", 20, minimum=1)  # requests per account per second
EA_BAD_TOKEN_PER_MINUTE = envint("EA_BAD_TOKEN_PER_MINUTE", 60, minimum=1)  # wrong tokens per client IP
EA_REDELIVER_SECONDS = envint("EA_REDELIVER_SECONDS", 10, minimum=1)  # resend an unacknowledged command after
EA_QUEUE_RECONCILE_SECONDS = envint("EA_QUEUE_RECONCILE_SECONDS", 30, minimum=1)  # Redis queue vs database check
EA_LIVE_FLOAT_SECONDS = envint("EA_LIVE_FLOAT_SECONDS", 5, minimum=1)  # live push of floating equity at most this often
EA_LONG_POLL_MAX_SECONDS = envint("EA_LONG_POLL_MAX_SECONDS", 25, minimum=0)
EA_GATE_CACHE_SECONDS = envint(
    "EA_GATE_CACHE_SECONDS", 300, minimum=0
)  # gate answer per account; billing changes drop it at once
EA_REDIS_MAX_CONNECTIONS = envint("EA_REDIS_MAX_CONNECTIONS", 500, minimum=2)
# ASGI middleware ahead of Django's stack (config/asgi.py), outermost first, as MIDDLEWARE: the EA edge.
ASGI_HTTP_MIDDLEWARE = ["mt5bridge.ea.fast.EAFastPath"]
EA_FAST_PATH = envbool("EA_FAST_PATH", True)  # serve POST /api/ea/heartbeat before Django's middleware (ASGI)
EA_FAST_PATH_THREADS = envint("EA_FAST_PATH_THREADS", 8, minimum=1)  # worker threads per process for that path

# --- Billing (dj-stripe plans and gates) ----------------------------------------------
# Without a Stripe secret key billing runs in local mode: everyone is on BILLING_DEFAULT_PLAN.
BILLING_FREE_PLAN = envstr("BILLING_FREE_PLAN", "free")  # with Stripe: the plan of users without a subscription
BILLING_PAST_DUE_GRACE_DAYS = envint("BILLING_PAST_DUE_GRACE_DAYS", 7, minimum=0)
BILLING_WEBHOOK_TOLERANCE = envint("STRIPE_WEBHOOK_TOLERANCE", 300, minimum=1)  # seconds
BILLING_CACHE_SECONDS = envint("BILLING_CACHE_SECONDS", 60, minimum=0)
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"
if envstr("STRIPE_API_HOST"):  # e.g. stripe-mock; dj-stripe points the stripe library there
    STRIPE_API_HOST = envstr("STRIPE_API_HOST")
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = [
    *REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"],
    "entitlements.throttles.ApiCallCounter",
]

# --- Bonuses (broker bonus back office) -------------------------------------------------

# Broker-side gateway of the bonus engine: empty = the MT5_GATEWAY / MT5_SERVER_GATEWAYS choice.
BONUS_MT5_GATEWAY = envchoice("BONUS_MT5_GATEWAY", "", ("", "simulated", "terminal", "manager"))
BONUS_MT5_SERVER = envstr("BONUS_MT5_SERVER")  # empty: every server the gateway reaches
BONUS_MONITOR_INTERVAL = envfloat("BONUS_MONITOR_INTERVAL", 0.3, minimum=0.05)
BONUS_MONITOR_MAX_ERRORS = envint("BONUS_MONITOR_MAX_ERRORS", 5, minimum=1)
BONUS_MONITOR_DISCOVERY_SECONDS = envfloat("BONUS_MONITOR_DISCOVERY_SECONDS", 30.0, minimum=1.0)
# A shard's lease: a live monitor takes over a dead shard's accounts within about this long plus one cycle.
BONUS_MONITOR_LEASE_SECONDS = envfloat("BONUS_MONITOR_LEASE_SECONDS", 3.0, minimum=1.0)
# The monitor's MT5 postings (and the deal reading behind a deposit) on a Celery queue, one account at a time:
# "auto" = queued when Celery has a broker and is not eager, otherwise run inside the monitor's cycle.
BONUS_OPERATIONS_QUEUED = envchoice("BONUS_OPERATIONS_QUEUED", "auto", ("auto", "true", "false"))
BONUS_OPERATIONS_QUEUE = envstr("BONUS_OPERATIONS_QUEUE", "bonus_ops")
BONUS_MONITOR_HISTORY_SECONDS = envfloat("BONUS_MONITOR_HISTORY_SECONDS", 60.0, minimum=1.0)
BONUS_MONITOR_KEEP_DAYS = envint("BONUS_MONITOR_KEEP_DAYS", 7, minimum=1)
BONUS_DEPOSIT_LOOKBACK_DAYS = envint("BONUS_DEPOSIT_LOOKBACK_DAYS", 7, minimum=1)


# The most one manual assignment may grant, per role (bonuses/limits.py); empty = no role limit.
BONUS_MANUAL_LIMIT_SUPPORT_AGENT = envmoney("BONUS_MANUAL_LIMIT_SUPPORT_AGENT", "1000")
BONUS_MANUAL_LIMIT_SUPER_ADMIN = envmoney("BONUS_MANUAL_LIMIT_SUPER_ADMIN", "")
# Maker-checker: a manual or overridden grant above this amount waits for a second staff member's approval;
# empty = no approval step (docs/bonuses.md "Financial controls").
BONUS_APPROVAL_THRESHOLD = envmoney("BONUS_APPROVAL_THRESHOLD", "")
# Abuse signal: this many accounts sharing an email domain, a lead source or an IP on one campaign are listed for review.
BONUS_ABUSE_MIN_ACCOUNTS = envint("BONUS_ABUSE_MIN_ACCOUNTS", 3, minimum=2)
# Mail providers everyone uses: sharing one of them says nothing.
BONUS_ABUSE_IGNORED_DOMAINS = envlist(
    "BONUS_ABUSE_IGNORED_DOMAINS", "gmail.com,yahoo.com,hotmail.com,outlook.com,icloud.com,mail.ru,yandex.ru"
)
# A claimed MT5 posting is held this long and renewed while its gateway call runs (bonuses/services/operations.py).
BONUS_OPERATION_CLAIM_SECONDS = envfloat("BONUS_OPERATION_CLAIM_SECONDS", 30.0, minimum=1.0)
# A refused or unanswered MT5 posting is retried after 1, 2, 4 ... seconds (at most the cap), and after
# MAX_ATTEMPTS it is marked failed for a person (bonus monitor page: retry now / mark resolved).
BONUS_OPERATION_RETRY_SECONDS = envfloat("BONUS_OPERATION_RETRY_SECONDS", 1.0, minimum=0.0)
BONUS_OPERATION_RETRY_MAX_SECONDS = envfloat("BONUS_OPERATION_RETRY_MAX_SECONDS", 300.0, minimum=1.0)
BONUS_OPERATION_MAX_ATTEMPTS = envint("BONUS_OPERATION_MAX_ATTEMPTS", 12, minimum=1)
# After drawdown protection took the credit back, a negative balance is brought back to zero with a
# CORRECTION deal ("correct", negative-balance protection) or left for the broker ("leave").
BONUS_NEGATIVE_BALANCE_POLICY = envchoice("BONUS_NEGATIVE_BALANCE_POLICY", "correct", ("correct", "leave"))
# PostgreSQL connection pool (psycopg 3, Django 5.1+). An ASGI server runs each sync view in its own
# thread, and each thread would otherwise keep its own connection (past max_connections under load).
# 0 = off (persistent connections per thread, CONN_MAX_AGE); config/asgi.py makes it 8 for the web process.
DATABASE_POOL_MAX = envint("DATABASE_POOL_MAX", 0, minimum=0)
if DATABASE_POOL_MAX and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_MAX,
        "timeout": 10,
    }

# --- Health (config/health.py, docs/deploy.md) ---------------------------------------------
# /health/live/ answers while the process runs; /health/ready/ runs these checks (django-health-check) and answers
# 503 when one fails. The admin's "System health" page shows the same report.
HEALTH_CHECKS = {
    "database": "config.health.Database",
    "redis": "config.health.Redis",
    "celery_workers": "config.health.CeleryWorkers",
    "celery_beat": "config.health.CeleryBeat",
    "bonus_monitor": "bonuses.health.MonitorShards",
}
HEALTH_REDIS_TIMEOUT = envfloat("HEALTH_REDIS_TIMEOUT", 2.0, minimum=0.1)  # connect and answer within (seconds)
HEALTH_CELERY_TIMEOUT = envfloat("HEALTH_CELERY_TIMEOUT", 1.0, minimum=0.1)  # workers answer a ping within (seconds)
# Beat dispatches something every few seconds (the bonus monitor's fallback cycle): older than this, it is down.
HEALTH_BEAT_MAX_AGE_SECONDS = envint("HEALTH_BEAT_MAX_AGE_SECONDS", 180, minimum=1)
# A bonus monitor shard whose last cycle is older than this is down (a cycle runs every BONUS_MONITOR_INTERVAL).
HEALTH_MONITOR_MAX_AGE_SECONDS = envfloat("HEALTH_MONITOR_MAX_AGE_SECONDS", 15.0, minimum=1.0)

# --- Published development secrets (keep this section last) ----------------------------
# With DEBUG off, no setting may hold a development value published in this repository (a _DEV_* constant above):
# anyone could forge sessions with it or decrypt the stored MT5 passwords. A new secret with a development default
# gets a _DEV_* constant and is covered here; .env.example leaves every secret empty (tests/test_settings.py).
_PUBLISHED = {
    v for name, v in dict(globals()).items() if name.startswith("_DEV_") and isinstance(v, str) and len(v) >= 16
}
_VARIABLE_OF = {"DJSTRIPE_WEBHOOK_SECRET": "STRIPE_WEBHOOK_SECRET"}  # settings named apart from their variable
if not DEBUG:
    for _name, _value in sorted(dict(globals()).items()):
        if _name.startswith("_") or not _name.isupper():  # settings only, not the _DEV_* constants themselves
            continue
        _values = _value if isinstance(_value, (list, tuple)) else [_value]
        if any(isinstance(v, str) and v in _PUBLISHED for v in _values):
            raise ImproperlyConfigured(
                f"{_VARIABLE_OF.get(_name, _name)} holds a development value published in the repository; "
                "set a secret of your own (or DEBUG=true for local development)"
            )
