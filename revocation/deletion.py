"""Delete sessions by key through the configured engine, so cached copies go too."""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.core.cache import caches

from . import engines


def delete_sessions(keys: Sequence[str]) -> int:
    """Delete the sessions `keys` everywhere the engine keeps them; return table rows deleted."""
    if not keys:
        return 0
    store = engines.store_class()
    deleted = 0
    if engines.has_table():
        # No model points at Session (see UserSession), so this is one DELETE statement.
        deleted = engines.session_model().objects.filter(session_key__in=keys).delete()[0]
    prefix = getattr(store, "cache_key_prefix", None)
    if prefix is not None:
        # cached_db and cache: deleting the row alone would leave the cached copy valid.
        caches[settings.SESSION_CACHE_ALIAS].delete_many([prefix + key for key in keys])
    elif not engines.has_table() and engines.has_server_state():
        # A custom engine we know nothing about: use its own delete().
        for key in keys:
            store().delete(key)
    return deleted
