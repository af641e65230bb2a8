"""The session engine strategy: one object per kind of engine, chosen once from SESSION_ENGINE.

Whatever revocation does to stored sessions it asks this object: whether they
live in a table or on the server at all, how to delete them (cached copies
too), which mappings are still live, and how to clear expired ones. Kinds:
`db` (a table), `cached_db` (a table and a cache), `cache`, `signed_cookies`
(nothing on the server) and any other engine with server state, reached
through its own SessionStore. Subclasses of Django's engines count by their
hooks: `get_model_class()` means a table, `cache_key_prefix` cached copies.

Cached copies are evicted when the rows are deleted and again after the
deleting transaction commits: until then other connections still see the
rows, and a request in between reloads one and caches it again.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from datetime import datetime, timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import SessionBase
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router, transaction
from django.db.models import Exists, F, OuterRef, QuerySet, Value
from django.db.models.deletion import Collector
from django.db.models.functions import Concat
from django.utils import timezone

from . import sql, stamps
from .app_settings import app_settings
from .models import RevocationFence, UserSession

logger = logging.getLogger("revocation")

DB_ENGINES = frozenset(
    {"django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cached_db"}
)
SIGNED_COOKIES = "django.contrib.sessions.backends.signed_cookies"
# The UserSession key of a signed-cookie sign-in: never a session key (those are
# [a-z0-9] only), so rows of both kinds could never be confused.
COOKIE_PREFIX = "cookie:"
FILE_ENGINE = "django.contrib.sessions.backends.file"


class Engine:
    """An engine with server state known only through its SessionStore; the base of every kind."""

    has_table = False
    has_server_state = True
    cache_key_prefix: str | None = None

    def __init__(self, path: str, store_class: type[SessionBase]) -> None:
        self.path = path
        self.store_class = store_class

    def link_key(self, session: SessionBase) -> str | None:
        """Return the key of the session's UserSession row: its session key."""
        return session.session_key

    def session_model(self) -> Any:
        """Return the Session model of a table-backed engine."""
        raise ImproperlyConfigured(f"SESSION_ENGINE {self.path!r} keeps no session table")

    def delete(self, keys: Sequence[str]) -> int:
        """Delete the sessions `keys` where the engine keeps them; return table rows deleted."""
        for key in keys:
            self.store_class().delete(key)
        return 0

    def evict(self, keys: Sequence[str], *, using: str | None) -> None:
        """Delete the cached copies of the sessions `keys` (nothing: this engine caches none)."""

    def live(self, mappings: QuerySet[UserSession]) -> QuerySet[UserSession]:
        """Return the `mappings` whose session is still stored."""
        # The store decides; a user has few sessions, so ask per key.
        store = self.store_class()
        gone = [us.session_key for us in mappings if not store.exists(us.session_key)]
        return mappings.exclude(session_key__in=gone)

    def stored(self, keys: Sequence[str]) -> dict[str, Any] | None:
        """Return {key: session data or None} in one round trip, or None if the engine cannot."""
        return None

    def clear_expired(self, *, now: datetime, batch_size: int, step: sql.Step) -> int:
        """Let the engine clear itself; return how many it cleared.

        Raises NotImplementedError, as Django's command expects, if the engine cannot.
        Django's engines return nothing from clear_expired(), so for the file engine the
        count is the session files that went away; another engine may return its count.
        """
        if self.path == FILE_ENGINE:
            before = self._session_files()
            self.store_class.clear_expired()
            return max(0, before - self._session_files())
        cleared = self.store_class.clear_expired()
        return cleared if isinstance(cleared, int) else 0

    def notes(self) -> list[str]:
        """Return what clearsessions can and cannot do with this engine."""
        return [f"{self.path}: expired sessions are cleared by the engine's own clear_expired()."]

    def _session_files(self) -> int:
        """Return how many session files the file engine holds."""
        folder = self.store_class._get_storage_path()  # type: ignore[attr-defined]
        prefix = settings.SESSION_COOKIE_NAME
        return sum(1 for name in os.listdir(folder) if name.startswith(prefix))


class SignedCookies(Engine):
    """Sessions that live only in the browser: nothing to delete, the fence revokes them.

    A signed cookie's session key is the whole cookie and changes on every save, so
    its UserSession row is keyed by the sign-in id stamped into it at login.
    """

    has_server_state = False

    def link_key(self, session: SessionBase) -> str | None:
        """Return `cookie:<sign-in id>`, or None for a session with no user or no id."""
        if session.session_key is None and not session.accessed:
            # No cookie came and nothing used the session: reading it would add `Vary: Cookie`.
            return None
        login_id = stamps.login_id(session)
        return f"{COOKIE_PREFIX}{login_id}" if login_id and SESSION_KEY in session else None

    def delete(self, keys: Sequence[str]) -> int:
        return 0

    def live(self, mappings: QuerySet[UserSession]) -> QuerySet[UserSession]:
        # A cookie is valid for SESSION_COOKIE_AGE after its last save, and one in use is
        # saved (and its row touched) at least once per touch interval: older rows are dead.
        # So is an ended sign-in's row, which a request in flight as it ended touched back.
        return mappings.filter(last_seen_at__gte=timezone.now() - cookie_lifespan()).exclude(
            Exists(RevocationFence.objects.filter(key=ended_sign_in_key()))
        )

    def clear_expired(self, *, now: datetime, batch_size: int, step: sql.Step) -> int:
        return 0

    def notes(self) -> list[str]:
        return [
            "SESSION_ENGINE is signed_cookies: sessions live only in the browser, so there "
            "is nothing to clear server-side; mapping rows idle for longer than "
            "SESSION_COOKIE_AGE are pruned."
        ]


class CachedCopies(Engine):
    """An engine that keeps session copies in SESSION_CACHE_ALIAS under `cache_key_prefix`."""

    cache_key_prefix: str

    def __init__(self, path: str, store_class: type[SessionBase]) -> None:
        super().__init__(path, store_class)
        self.cache_key_prefix = str(store_class.cache_key_prefix)  # type: ignore[attr-defined]

    def evict(self, keys: Sequence[str], *, using: str | None) -> None:
        """Delete the cached copies of the sessions `keys` now, and again once `using` commits.

        `using` is the database the rows were deleted from (None: the engine has no table).
        """
        # Now: should the process die between the commit and its on-commit hooks, the
        # copies cached before the delete are gone anyway.
        self._delete_cached(keys)
        if using is not None and connections[using].in_atomic_block:
            # After the commit: a request in between still saw the row and cached it again.
            transaction.on_commit(
                functools.partial(self._evict_after_commit, list(keys)), using=using, robust=True
            )

    def _evict_after_commit(self, keys: list[str]) -> None:
        """Delete cached copies once the deletion is visible; a failure is logged, not raised."""
        try:
            self._delete_cached(keys)
        except Exception:
            logger.exception(
                "revocation: could not evict %d cached sessions after commit; a copy cached "
                "between the delete and the commit lives until it expires",
                len(keys),
            )

    def _delete_cached(self, keys: Sequence[str]) -> None:
        """Delete the cached copies of the sessions `keys`."""
        cache = caches[settings.SESSION_CACHE_ALIAS]
        cache.delete_many([self.cache_key_prefix + key for key in keys])


class Cache(CachedCopies):
    """Sessions kept only in the cache, which expires them by itself."""

    def delete(self, keys: Sequence[str]) -> int:
        self.evict(keys, using=None)
        return 0

    def stored(self, keys: Sequence[str]) -> dict[str, Any]:
        found = caches[settings.SESSION_CACHE_ALIAS].get_many(
            [self.cache_key_prefix + key for key in keys]
        )
        return {key: found.get(self.cache_key_prefix + key) for key in keys}

    def clear_expired(self, *, now: datetime, batch_size: int, step: sql.Step) -> int:
        return 0

    def notes(self) -> list[str]:
        return [
            "SESSION_ENGINE is cache: the cache expires sessions by itself, so there is "
            "nothing to delete; mapping rows whose session left the cache are pruned."
        ]


class Table(Engine):
    """Sessions kept in a database table (`db`, or any engine with get_model_class())."""

    has_table = True

    def session_model(self) -> Any:
        return self.store_class.get_model_class()  # type: ignore[attr-defined]

    def delete(self, keys: Sequence[str]) -> int:
        # No model points at Session (see UserSession), so this is one DELETE statement.
        return int(self.session_model().objects.filter(session_key__in=keys).delete()[0])

    def live(self, mappings: QuerySet[UserSession]) -> QuerySet[UserSession]:
        return mappings.filter(sql.Stored(F("session_key"), self.session_model(), timezone.now()))

    def clear_expired(self, *, now: datetime, batch_size: int, step: sql.Step) -> int:
        """Delete the rows that expired before `now`, a batch per short transaction.

        Nothing goes through Django's deletion Collector (DESIGN §5), unless another
        app hangs a cascade or a delete signal on the session model: then batches of
        the ORM delete keep those working, still bounded.
        """
        model = self.session_model()
        using = router.db_for_write(model)
        if not Collector(using=using).can_fast_delete(model._base_manager.all()):
            return sql.Dialect(using).delete_expired(model, now, batch_size, step)
        return sql.dialect(using).delete_expired(model, now, batch_size, step)

    def notes(self) -> list[str]:
        return []


class CachedTable(Table, CachedCopies):
    """Sessions kept in a table with a copy in the cache (`cached_db`)."""

    def delete(self, keys: Sequence[str]) -> int:
        deleted = super().delete(keys)
        self.evict(keys, using=router.db_for_write(self.session_model()))
        return deleted

    def notes(self) -> list[str]:
        return ["cached_db: expired rows are deleted; their cache copies expire by themselves."]


def cookie_lifespan() -> timedelta:
    """Return how long after its row's last touch a signed cookie may still be valid."""
    return timedelta(seconds=settings.SESSION_COOKIE_AGE + app_settings.TOUCH_INTERVAL)


def ended_sign_in_key() -> Concat:
    """Return the fence key that ends the sign-in of the UserSession row of an outer query."""
    return Concat(Value(RevocationFence.LOGIN_PREFIX), OuterRef("login_id"))


def login_id_of(key: str) -> str:
    """Return the sign-in id in a signed cookie's link key (`cookie:<id>`)."""
    return key.removeprefix(COOKIE_PREFIX)


def link_key(session: SessionBase) -> str | None:
    """Return the key of `session`'s UserSession row under the configured engine."""
    return current().link_key(session)


def current() -> Engine:
    """Return the strategy of the configured SESSION_ENGINE."""
    return _strategy(str(settings.SESSION_ENGINE))


@functools.cache
def _strategy(path: str) -> Engine:
    """Return the strategy for the engine at dotted `path`, from its SessionStore's hooks."""
    store_class: type[SessionBase] = import_module(path).SessionStore
    if path == SIGNED_COOKIES:
        return SignedCookies(path, store_class)
    cached = getattr(store_class, "cache_key_prefix", None) is not None
    if path in DB_ENGINES or getattr(store_class, "get_model_class", None) is not None:
        return CachedTable(path, store_class) if cached else Table(path, store_class)
    return Cache(path, store_class) if cached else Engine(path, store_class)


def engine() -> str:
    """Return the dotted path of the configured session engine."""
    return str(settings.SESSION_ENGINE)


def store_class() -> type[SessionBase]:
    """Return the SessionStore class of the configured engine."""
    return current().store_class


def has_table() -> bool:
    """Return whether sessions live in a database table (db, cached_db or a subclass)."""
    return current().has_table


def has_server_state() -> bool:
    """Return whether deleting on the server ends a session (False for signed cookies)."""
    return current().has_server_state


def session_model() -> Any:
    """Return the Session model of a table-backed engine."""
    return current().session_model()
