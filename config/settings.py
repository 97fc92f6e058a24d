"""Relance settings: read only from environment variables, with defaults that work locally.

See the README's "Configuration" table for every variable.
"""

import os
import tempfile
from pathlib import Path

from config.env import Env, SettingsError

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = Env()

DEBUG = env.bool("DEBUG", True)

SECRET_KEY = env.raw("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise SettingsError("SECRET_KEY", "", "a long random string (required when DEBUG=false)")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_q",
    "billing",
    "automations",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "billing.middleware.CurrentAccountMiddleware",
]

ROOT_URLCONF = "config.urls"

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
                "billing.context_processors.dashboard",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

# SQLite is the embedded default. WAL and IMMEDIATE transactions let the web server and the
# django-q2 worker write to the same file without "database is locked" errors.
DATABASES = {"default": env.database("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # Tests use a file, not Django's shared in-memory database: its table locks ignore the busy
    # timeout, so tests where two workers write at once would fail instead of waiting. One file
    # per test process, so test runs side by side never share a database.
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"relance-test-{os.getpid()}.sqlite3")
    }
else:
    # Django's backend, less the pattern indexes on keys (config/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "config.postgresql"
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", 60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Values travel apart from the SQL, and a statement run a few times on a connection is
    # prepared there: PostgreSQL then skips parsing and planning it. The API's and the
    # engine's statements have a handful of fixed shapes, so this took a quarter off the
    # database's CPU per created subscription (docs/benchmarks.md). A transaction-pooling
    # proxy (PgBouncer before 1.21) cannot keep prepared statements: set
    # DATABASE_PREPARED_STATEMENTS=false behind one.
    if env.bool("DATABASE_PREPARED_STATEMENTS", True):
        DATABASES["default"].setdefault("OPTIONS", {}).update(
            {"server_side_binding": True, "prepare_threshold": 5}
        )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.timezone("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

vars().update(env.email("EMAIL_URL", "consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", "Relance <billing@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# django-q2 runs background work. The ORM broker needs nothing but the database; set
# Q_CLUSTER_BROKER=redis://… to use Redis. Any number of `manage.py qcluster` processes on any
# number of machines may share one broker.
Q_TIMEOUT = env.int("Q_CLUSTER_TIMEOUT", 120, minimum=1)
Q_CLUSTER = {
    "name": "relance",
    "workers": env.int("Q_CLUSTER_WORKERS", 2, minimum=1),
    "timeout": Q_TIMEOUT,
    # A task not acknowledged within `retry` seconds is handed to another worker: it must
    # exceed the timeout, or a slow task would run twice.
    "retry": Q_TIMEOUT + 60,
    "max_attempts": 5,
    "queue_limit": 50,
    "bulk": 10,
    "catch_up": False,
    "ack_failures": True,
    "save_limit": 1000,
    # How long an idle cluster waits before asking the database broker again for tasks.
    "poll": env.seconds("Q_CLUSTER_POLL", 0.2, minimum=0.01),
    # Off for a cluster that only helps (the renewal benchmark's): it must not run schedules.
    "scheduler": env.bool("Q_CLUSTER_SCHEDULER", True),
    **env.broker("Q_CLUSTER_BROKER", "orm"),
    # `Q_CLUSTER_NAME=…` starts a cluster on a queue of its own (django-q2 reads this then):
    # the renewal benchmark's helpers take only the batches it hands them.
    "ALT_CLUSTERS": {},
}

# Rate limits (API keys, hosted customer pages) count in the default cache: per process with
# the default, shared by every process and machine with CACHE_URL=redis://….
CACHES = {"default": env.cache("CACHE_URL", "locmem://")}

# The dashboard lists use keyset pagination; this is the page size.
DASHBOARD_PAGE_SIZE = env.int("DASHBOARD_PAGE_SIZE", 25, minimum=1)

# The /v1 API: requests per second per key before 429 (0: no limit), and how long an
# idempotency key whose request never finished (a crashed worker) stays locked.
RELANCE_API_RATE_LIMIT = env.int("RELANCE_API_RATE_LIMIT", 100, minimum=0)
RELANCE_API_IDEMPOTENCY_LOCK_SECONDS = env.int(
    "RELANCE_API_IDEMPOTENCY_LOCK_SECONDS", 60, minimum=1
)

# How many reverse proxies in front of Relance append to X-Forwarded-For: the client address
# that rate limits count is that many entries from the right (0: REMOTE_ADDR, no proxy). Only
# set it when every request comes through those proxies, or clients could choose their address.
RELANCE_TRUSTED_PROXIES = env.int("RELANCE_TRUSTED_PROXIES", 0, minimum=0)

# Webhook deliveries (docs/webhooks.md). Live-mode endpoints may not point at loopback, private
# or link-local addresses unless this is on (local development); test-mode ones always may.
RELANCE_WEBHOOKS_ALLOW_PRIVATE = env.bool("RELANCE_WEBHOOKS_ALLOW_PRIVATE", False)
# Seconds an endpoint has to answer (Stripe: at most 15; 2xx or it is retried).
RELANCE_WEBHOOKS_TIMEOUT = env.int("RELANCE_WEBHOOKS_TIMEOUT", 15, minimum=1)
# An endpoint whose deliveries have failed for this many hours on end is disabled.
RELANCE_WEBHOOKS_DISABLE_AFTER_HOURS = env.int(
    "RELANCE_WEBHOOKS_DISABLE_AFTER_HOURS", 72, minimum=1
)

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
# Behind a TLS-terminating proxy: trust its X-Forwarded-Proto, redirect plain HTTP, send HSTS.
if env.bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 0)
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {
        "handlers": ["console"],
        "level": env.choice("LOG_LEVEL", "INFO", {"DEBUG", "INFO", "WARNING", "ERROR"}),
    },
    # httpx logs every request at INFO: one line per webhook attempt, which the delivery log
    # already records.
    "loggers": {"httpx": {"level": "WARNING"}},
}

# Customer emails (docs/notifications.md). Links in emails lead to the hosted pages at this
# public address: /pay/<token>/ and /manage/<token>/. EMAIL_URL picks the backend (SMTP, or a
# provider through django-anymail with EMAIL_BACKEND=anymail.backends.<provider>.EmailBackend).
RELANCE_PUBLIC_URL = env.str("RELANCE_PUBLIC_URL", "http://localhost:8000")
if env.raw("EMAIL_BACKEND"):
    EMAIL_BACKEND = env.str("EMAIL_BACKEND", "")
# Provider credentials for anymail, e.g. ANYMAIL_POSTMARK_SERVER_TOKEN, read as they are named.
ANYMAIL = {
    name.removeprefix("ANYMAIL_"): value
    for name, value in os.environ.items()
    if name.startswith("ANYMAIL_") and value
}
