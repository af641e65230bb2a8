"""What accepting a revocation writes in the web handler: the row and its fences, together.

Transactional: in autocommit, as a server runs, and fences reach the cache on commit.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.db.models.signals import post_save, pre_save
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from revocation import fences, services
from revocation.models import RevocationFence, RevocationRequest
from tests.db_faults import refusing

pytestmark = pytest.mark.django_db(transaction=True)


def cached_fence(key: str) -> float | None:
    """Return the fence the cache holds for `key` (epoch seconds), None if none."""
    value = cache.get(fences.CACHE_PREFIX + key)
    return None if value is None else value / 1_000_000


def test_the_row_and_its_fence_are_one_statement_on_postgresql(make_user: Any) -> None:
    """Elsewhere one transaction: the row, then one upsert (and a read on MariaDB/MySQL)."""
    u = make_user()
    with CaptureQueriesContext(connection) as captured:
        services.revoke_user_sessions(u)

    queries = [q["sql"] for q in captured.captured_queries]
    fence_table = RevocationFence._meta.db_table
    if connection.vendor == "postgresql":
        assert len(queries) == 1, queries
        assert RevocationRequest._meta.db_table in queries[0] and fence_table in queries[0]
    else:
        fence_statements = [q for q in queries if fence_table in q]
        assert len(fence_statements) == (2 if connection.vendor == "mysql" else 1), queries
        assert queries[0].startswith("BEGIN") and queries[-1] == "COMMIT"
    request = RevocationRequest.objects.get()
    key = fences.user_key(u.pk)
    assert RevocationFence.objects.get(key=key).not_before == request.created_at
    assert cached_fence(key) == request.created_at.timestamp()


def test_the_cache_gets_the_fence_the_database_holds_not_the_time_asked(make_user: Any) -> None:
    """A newer fence committed first (its cached copy evicted since) must not come back older."""
    u = make_user()
    key = fences.user_key(u.pk)
    newer = timezone.now() + timedelta(minutes=5)
    RevocationFence.objects.create(key=key, not_before=newer)

    request = services.revoke_user_sessions(u)

    assert request.created_at < newer
    assert RevocationFence.objects.get(key=key).not_before == newer
    assert cached_fence(key) == newer.timestamp()


@pytest.mark.parametrize("returning", [True, False], ids=["returning", "read-back"])
def test_record_mirrors_what_the_database_holds(
    monkeypatch: pytest.MonkeyPatch, returning: bool
) -> None:
    """Both ways of learning it: the upsert's RETURNING, or reading back (SQLite < 3.35)."""
    newer = timezone.now() + timedelta(minutes=5)
    older = newer - timedelta(minutes=10)
    RevocationFence.objects.create(key=fences.GLOBAL, not_before=newer)
    monkeypatch.setattr(connection.features, "can_return_columns_from_insert", returning)

    with transaction.atomic():
        fences.record([fences.GLOBAL, fences.group_key("ops")], older)

    assert cached_fence(fences.GLOBAL) == newer.timestamp()
    assert cached_fence(fences.group_key("ops")) == older.timestamp()


def test_a_request_whose_fence_is_refused_is_not_accepted(
    make_user: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The row and its fence commit together or not at all: no request the fence misses."""
    u = make_user()
    with refusing(RevocationFence, "key", fences.user_key(u.pk)), pytest.raises(DatabaseError):
        services.revoke_user_sessions(u)

    assert not RevocationRequest.objects.exists()
    assert not RevocationFence.objects.exists()
    assert "revocation accepted" not in caplog.text


def test_a_refused_request_inside_a_transaction_leaves_that_transaction_usable(
    make_user: Any,
) -> None:
    """A caller that catches the error goes on, as it could when the service used atomic()."""
    u, other = make_user(), make_user()
    with refusing(RevocationFence, "key", fences.user_key(u.pk)), transaction.atomic():
        with pytest.raises(DatabaseError):
            services.revoke_user_sessions(u)
        request = services.revoke_user_sessions(other)
        assert RevocationRequest.objects.get().pk == request.pk

    assert RevocationRequest.objects.get().user_ids == [other.pk]
    assert cached_fence(fences.user_key(other.pk)) == request.created_at.timestamp()


def test_the_row_is_saved_with_save_s_signals(make_user: Any) -> None:
    """Written by one statement on PostgreSQL, yet as observable as save()."""
    u = make_user()
    seen: list[tuple[str, Any, bool | None]] = []

    def before(sender: Any, instance: Any, **kwargs: Any) -> None:
        seen.append(("pre_save", instance.pk, None))

    def after(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
        seen.append(("post_save", instance.pk, created))

    pre_save.connect(before, sender=RevocationRequest)
    post_save.connect(after, sender=RevocationRequest)
    try:
        request = services.revoke_user_sessions(u)
    finally:
        pre_save.disconnect(before, sender=RevocationRequest)
        post_save.disconnect(after, sender=RevocationRequest)

    assert seen == [("pre_save", None, None), ("post_save", request.pk, True)]
    assert not request._state.adding
    assert RevocationRequest.objects.get(pk=request.pk).user_ids == [u.pk]


def test_more_fences_than_one_statement_takes_are_all_written_and_cached() -> None:
    """A long user list: past 1000 fences (SQLite: 499 a statement) they go in batches."""
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    user_model.objects.bulk_create(
        [user_model(username=f"many-{i}", password="!") for i in range(1001)]  # noqa: S106
    )
    ids = list(user_model.objects.values_list("pk", flat=True))

    request = services.revoke_sessions(user_ids=ids)

    keys = [fences.user_key(uid) for uid in ids]
    assert RevocationFence.objects.filter(key__in=keys).count() == 1001
    assert {cached_fence(keys[0]), cached_fence(keys[-1])} == {request.created_at.timestamp()}
