"""Settings come from the environment; a bad value stops start-up naming the variable."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.env import Env, SettingsError

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_give_a_working_local_install():
    env = Env({})
    assert env.bool("DEBUG", True) is True
    assert env.database("DATABASE_URL", "sqlite:////tmp/x.sqlite3")["ENGINE"].endswith("sqlite3")
    assert env.broker("Q_CLUSTER_BROKER", "orm") == {"orm": "default"}
    assert env.timezone("TIME_ZONE", "UTC") == "UTC"
    assert env.email("EMAIL_URL", "consolemail://")["EMAIL_BACKEND"].endswith(
        "console.EmailBackend"
    )


def test_cluster_poll_is_read_in_seconds():
    assert Env({}).seconds("Q_CLUSTER_POLL", 0.2) == 0.2
    assert Env({"Q_CLUSTER_POLL": "0.05"}).seconds("Q_CLUSTER_POLL", 0.2, minimum=0.01) == 0.05


def test_postgres_database_url_selects_postgresql():
    config = Env({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/relance"}).database(
        "DATABASE_URL", "sqlite:///x"
    )
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert config["NAME"] == "relance"


def test_redis_broker_url_selects_redis():
    broker = Env({"Q_CLUSTER_BROKER": "redis://127.0.0.1:6379/0"}).broker("Q_CLUSTER_BROKER", "orm")
    assert broker == {"redis": "redis://127.0.0.1:6379/0"}


def test_cache_url_selects_a_shared_redis_cache():
    assert Env({}).cache("CACHE_URL", "locmem://")["BACKEND"].endswith("LocMemCache")
    config = Env({"CACHE_URL": "redis://127.0.0.1:6379/1"}).cache("CACHE_URL", "locmem://")
    assert config == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/1",
    }


def test_smtp_email_url_configures_smtp():
    config = Env({"EMAIL_URL": "smtp://user:pw@mail.example.com:587"}).email("EMAIL_URL", "x")
    assert config["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert config["EMAIL_HOST"] == "mail.example.com"
    assert config["EMAIL_PORT"] == 587


@pytest.mark.parametrize(
    ("name", "value", "read"),
    [
        ("DEBUG", "maybe", lambda e: e.bool("DEBUG", True)),
        ("TIME_ZONE", "Mars/Olympus_Mons", lambda e: e.timezone("TIME_ZONE", "UTC")),
        ("DATABASE_URL", "mysql://root@localhost/x", lambda e: e.database("DATABASE_URL", "")),
        ("DATABASE_URL", "postgres://host:5432/", lambda e: e.database("DATABASE_URL", "")),
        ("EMAIL_URL", "pigeon://coop", lambda e: e.email("EMAIL_URL", "consolemail://")),
        ("Q_CLUSTER_BROKER", "rabbitmq://x", lambda e: e.broker("Q_CLUSTER_BROKER", "orm")),
        ("CACHE_URL", "memcached://x", lambda e: e.cache("CACHE_URL", "locmem://")),
        ("Q_CLUSTER_WORKERS", "two", lambda e: e.int("Q_CLUSTER_WORKERS", 2, minimum=1)),
        ("Q_CLUSTER_WORKERS", "0", lambda e: e.int("Q_CLUSTER_WORKERS", 2, minimum=1)),
        ("Q_CLUSTER_POLL", "soon", lambda e: e.seconds("Q_CLUSTER_POLL", 0.2, minimum=0.01)),
        ("Q_CLUSTER_POLL", "0", lambda e: e.seconds("Q_CLUSTER_POLL", 0.2, minimum=0.01)),
        ("Q_CLUSTER_POLL", "nan", lambda e: e.seconds("Q_CLUSTER_POLL", 0.2, minimum=0.01)),
        ("ALLOWED_HOSTS", " , ", lambda e: e.list("ALLOWED_HOSTS", ["localhost"])),
        ("LOG_LEVEL", "LOUD", lambda e: e.choice("LOG_LEVEL", "INFO", {"INFO", "DEBUG"})),
    ],
)
def test_invalid_value_is_rejected_naming_the_variable(name, value, read):
    with pytest.raises(SettingsError) as error:
        read(Env({name: value}))
    assert name in str(error.value)
    assert error.value.name == name


def _start(**overrides):
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_startup_stops_with_a_message_naming_the_bad_variable():
    result = _start(TIME_ZONE="Nowhere/Land")
    assert result.returncode != 0
    assert "Invalid environment variable TIME_ZONE='Nowhere/Land'" in result.stderr


def test_production_without_secret_key_refuses_to_start():
    result = _start(DEBUG="false", SECRET_KEY="")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def _database_settings(**overrides) -> dict:
    """The default database's settings as a process started with these variables reads them."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "DATABASE_PREPARED_STATEMENTS")
    }
    env.update(DJANGO_SETTINGS_MODULE="config.settings", **overrides)
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        "db = settings.DATABASES['default']; "
        "print(json.dumps({'ENGINE': db['ENGINE'], 'OPTIONS': db.get('OPTIONS', {})}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_postgresql_prepares_statements_unless_told_not_to():
    url = "postgres://postgres@127.0.0.1:5432/relance"
    default = _database_settings(DATABASE_URL=url)
    assert default["ENGINE"] == "config.postgresql"
    assert default["OPTIONS"]["server_side_binding"] is True
    assert default["OPTIONS"]["prepare_threshold"] == 5
    # Behind a transaction-pooling proxy.
    pooled = _database_settings(DATABASE_URL=url, DATABASE_PREPARED_STATEMENTS="false")
    assert "server_side_binding" not in pooled["OPTIONS"]
    assert "prepare_threshold" not in pooled["OPTIONS"]
