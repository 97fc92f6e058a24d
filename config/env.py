"""Reading settings from the environment: every value is checked, and a bad one stops start-up.

django-environ parses; this module adds the checks it does not make (a boolean that is not a
boolean, a time zone that does not exist, an unknown broker) so that a typo in the environment
fails at once with the variable's name instead of misbehaving later.
"""

import math
import os
import zoneinfo

import environ
from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on", "y", "t"}
FALSE_WORDS = {"0", "false", "no", "off", "n", "f", ""}


class SettingsError(ImproperlyConfigured):
    """An environment variable holds a value the product cannot run with."""

    def __init__(self, name: str, value: str, expected: str):
        self.name = name
        super().__init__(
            f"Invalid environment variable {name}={value!r}: expected {expected}. "
            f"Fix or unset {name} and start again."
        )


class Env:
    """Typed, validated access to environment variables."""

    def __init__(self, environ_map=None):
        self.environ = os.environ if environ_map is None else environ_map

    def raw(self, name: str, default: str | None = None) -> str | None:
        return self.environ.get(name, default)

    def str(self, name: str, default: str) -> str:
        return self.raw(name, default)

    def bool(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise SettingsError(name, value, "true or false")

    def int(self, name: str, default: int, *, minimum: int = 0) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise SettingsError(name, value, "a whole number") from None
        if number < minimum:
            raise SettingsError(name, value, f"a whole number of at least {minimum}")
        return number

    def seconds(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise SettingsError(name, value, "a number of seconds") from None
        if not math.isfinite(number) or number < minimum:
            raise SettingsError(name, value, f"a number of seconds of at least {minimum:g}")
        return number

    def list(self, name: str, default: list[str]) -> list[str]:
        value = self.raw(name)
        if value is None:
            return default
        items = [item.strip() for item in value.split(",") if item.strip()]
        if not items:
            raise SettingsError(name, value, "a comma-separated list with at least one item")
        return items

    def timezone(self, name: str, default: str) -> str:
        value = self.raw(name, default)
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise SettingsError(
                name, value, "an IANA time zone such as UTC or Europe/Paris"
            ) from None
        return value

    def database(self, name: str, default: str) -> dict:
        value = self.raw(name, default)
        scheme = value.split(":", 1)[0]
        if scheme not in {"sqlite", "postgres", "postgresql", "pgsql"}:
            raise SettingsError(
                name, value, "sqlite:////path/to/file.sqlite3 or postgres://user@host:port/name"
            )
        try:
            config = environ.Env.db_url_config(value)
        except Exception:  # django-environ raises several types for malformed URLs
            raise SettingsError(name, value, "a valid database URL") from None
        if not config.get("NAME"):
            raise SettingsError(name, value, "a database URL that names the database")
        return config

    def email(self, name: str, default: str) -> dict:
        value = self.raw(name, default)
        scheme = value.split(":", 1)[0]
        if scheme not in environ.Env.EMAIL_SCHEMES:
            known = ", ".join(sorted(environ.Env.EMAIL_SCHEMES))
            raise SettingsError(name, value, f"an email URL with one of the schemes {known}")
        return environ.Env.email_url_config(value)

    def broker(self, name: str, default: str) -> dict:
        """The django-q2 broker: `orm` (the database, the default) or a `redis://` URL."""
        value = self.raw(name, default)
        if value == "orm":
            return {"orm": "default"}
        if value.startswith(("redis://", "rediss://")):
            return {"redis": value}
        raise SettingsError(name, value, "orm or a redis://host:port/db URL")

    def cache(self, name: str, default: str) -> dict:
        """Django's default cache: `locmem://` (per process) or a shared `redis://` URL."""
        value = self.raw(name, default)
        if value == "locmem://":
            return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
        if value.startswith(("redis://", "rediss://")):
            return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": value}
        raise SettingsError(name, value, "locmem:// or a redis://host:port/db URL")

    def choice(self, name: str, default: str, choices: set[str]) -> str:
        value = self.raw(name, default)
        if value not in choices:
            raise SettingsError(name, value, "one of " + ", ".join(sorted(choices)))
        return value
