"""What the configured session engine can do: a database table, a cache, or neither."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase

DB_ENGINES = frozenset(
    {"django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cached_db"}
)
CACHE_ENGINES = frozenset(
    {"django.contrib.sessions.backends.cache", "django.contrib.sessions.backends.cached_db"}
)
SIGNED_COOKIES = "django.contrib.sessions.backends.signed_cookies"


def engine() -> str:
    """Return the dotted path of the configured session engine."""
    return str(settings.SESSION_ENGINE)


def store_class() -> type[SessionBase]:
    """Return the SessionStore class of the configured engine."""
    return import_module(engine()).SessionStore  # type: ignore[no-any-return]


def has_table() -> bool:
    """Return whether sessions live in a database table (db, cached_db or a subclass)."""
    if engine() in DB_ENGINES:
        return True
    model_getter: Any = getattr(store_class(), "get_model_class", None)
    return model_getter is not None


def has_server_state() -> bool:
    """Return whether deleting on the server ends a session (False for signed cookies)."""
    return engine() != SIGNED_COOKIES


def session_model() -> Any:
    """Return the Session model of a table-backed engine."""
    return store_class().get_model_class()  # type: ignore[attr-defined]


def cache_key_prefix() -> str | None:
    """Return the prefix of the engine's cached session copies (cached_db, cache), or None."""
    prefix: str | None = getattr(store_class(), "cache_key_prefix", None)
    return prefix
