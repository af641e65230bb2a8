"""The engine strategy: each SESSION_ENGINE maps to one kind, subclasses and custom engines too."""

from __future__ import annotations

from datetime import timedelta
from importlib import import_module
from typing import Any

import pytest
from django.contrib.sessions.backends import cached_db
from django.utils import timezone

from revocation import engines
from revocation.models import UserSession


class SessionStore(cached_db.SessionStore):
    """A project's own cached_db subclass (this module is its SESSION_ENGINE)."""


@pytest.mark.parametrize(
    ("path", "kind", "table", "server_state", "cached"),
    [
        ("django.contrib.sessions.backends.db", engines.Table, True, True, False),
        ("django.contrib.sessions.backends.cached_db", engines.CachedTable, True, True, True),
        ("django.contrib.sessions.backends.cache", engines.Cache, False, True, True),
        (
            "django.contrib.sessions.backends.signed_cookies",
            engines.SignedCookies,
            False,
            False,
            False,
        ),
        ("django.contrib.sessions.backends.file", engines.Engine, False, True, False),
        ("tests.memory_engine", engines.Engine, False, True, False),
        (__name__, engines.CachedTable, True, True, True),
    ],
)
def test_each_engine_maps_to_one_kind_by_its_hooks(
    path: str, kind: type, table: bool, server_state: bool, cached: bool, settings: Any
) -> None:
    settings.SESSION_ENGINE = path
    engine = engines.current()
    assert type(engine) is kind
    assert (engine.has_table, engine.has_server_state) == (table, server_state)
    assert (engine.cache_key_prefix is not None) == cached
    assert engines.has_table() is table and engines.has_server_state() is server_state


def test_the_strategy_follows_the_setting(settings: Any) -> None:
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    first = engines.current()
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    assert type(engines.current()) is engines.Cache
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    assert engines.current() is first


def test_an_engine_without_a_table_names_itself_when_asked_for_one(settings: Any) -> None:
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    with pytest.raises(Exception, match="backends.cache' keeps no session table"):
        engines.session_model()


@pytest.mark.django_db
def test_signed_cookies_delete_nothing_and_keep_every_mapping(
    settings: Any, make_user: Any
) -> None:
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    mapping = UserSession.objects.create(user=make_user(), session_key="cookie")
    engine = engines.current()
    assert engine.delete(["cookie"]) == 0
    assert list(engine.live(UserSession.objects.all())) == [mapping]


@pytest.mark.parametrize(
    "path",
    [
        "django.contrib.sessions.backends.db",
        "django.contrib.sessions.backends.cached_db",
        "django.contrib.sessions.backends.cache",
        "django.contrib.sessions.backends.signed_cookies",
        "tests.memory_engine",
    ],
)
def test_a_fresh_strategy_knows_its_engine(path: str, settings: Any) -> None:
    # Built anew, not the process-wide one: that one may predate the code under test.
    settings.SESSION_ENGINE = path
    store_class = import_module(path).SessionStore
    engine = engines._strategy.__wrapped__(path)  # type: ignore[attr-defined]
    assert engines.engine() == path
    assert (engine.path, engine.store_class) == (path, store_class)
    prefix = getattr(store_class, "cache_key_prefix", None)
    assert engine.cache_key_prefix == (str(prefix) if prefix is not None else None)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["django.contrib.sessions.backends.cache", "tests.memory_engine"])
def test_engines_without_a_table_count_no_deleted_rows(path: str, settings: Any) -> None:
    # The count is of table rows: a request's sessions_revoked counts mappings instead.
    settings.SESSION_ENGINE = path
    store = import_module(path).SessionStore()
    store.create()
    assert engines.current().delete([str(store.session_key)]) == 0
    assert not import_module(path).SessionStore().exists(str(store.session_key))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "django.contrib.sessions.backends.db",
        "django.contrib.sessions.backends.cached_db",
        "django.contrib.sessions.backends.cache",
    ],
)
def test_live_keeps_the_mappings_whose_own_session_is_stored_and_unexpired(
    path: str, settings: Any, make_user: Any
) -> None:
    settings.SESSION_ENGINE = path
    store_class = import_module(path).SessionStore
    user = make_user()

    def stored(age: int) -> str:
        """Save a session that expires in `age` seconds; return its key."""
        store = store_class()
        store["n"] = 1
        store.set_expiry(age)
        store.save()
        return str(store.session_key)

    live, expired = stored(3600), stored(3600)
    engine = engines.current()
    if engine.has_table:
        # Expired, not yet cleared: still a row.
        engine.session_model().objects.filter(session_key=expired).update(
            expire_date=timezone.now() - timedelta(seconds=1)
        )
    else:
        store_class(expired).delete()
    for key in (live, expired, "gone-" + live[5:]):
        UserSession.objects.create(user=user, session_key=key)
    found = engine.live(UserSession.objects.filter(user=user))
    assert [m.session_key for m in found] == [live]
