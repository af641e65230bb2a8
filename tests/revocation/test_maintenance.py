"""clearsessions and prune_orphans: expired sessions go, orphaned mappings go, nothing else does."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.db import connection, transaction
from django.db.models.signals import pre_delete
from django.test import Client
from django.utils import timezone

from revocation import engines, maintenance, selectors, tasks
from revocation.app_settings import app_settings
from revocation.models import RevocationRequest, UserSession
from tests.conftest import is_logged_in, logged_in_client
from tests.support import wait_until

State = RevocationRequest.State


@pytest.fixture(autouse=True)
def _fresh_owner_rotation() -> None:
    """Each test starts the rotating ownership check from the first row."""
    caches["default"].delete(maintenance.OWNER_CURSOR_KEY)


def login(user: Any) -> str:
    """Log `user` in with a fresh client (which links the session); return the key."""
    client = Client()
    client.force_login(user)
    return str(client.session.session_key)


def expire(key: str) -> None:
    """Make the stored session `key` expired: in the table, or for real in the cache."""
    if engines.has_table():
        Session.objects.filter(session_key=key).update(
            expire_date=timezone.now() - timedelta(minutes=5)
        )
        return
    store = engines.store_class()
    caches[settings.SESSION_CACHE_ALIAS].touch(store.cache_key_prefix + key, 1)  # type: ignore[attr-defined]
    wait_until(lambda: not store().exists(key), timeout=10, what="the cache entry to expire")


def delete_stored(key: str) -> None:
    """Delete the stored session `key` but leave its mapping, as a crash between the two would."""
    engines.store_class()().delete(key)


def mapped_users() -> dict[str, int]:
    """Return session key -> user id of every mapping row."""
    return dict(UserSession.objects.values_list("session_key", "user_id"))


@pytest.mark.django_db
@pytest.mark.parametrize("engine", ["db", "cached_db"])
def test_clearsessions_deletes_expired_sessions_and_keeps_live_ones(
    engine: str, make_user: Any, settings: Any
) -> None:
    settings.SESSION_ENGINE = f"django.contrib.sessions.backends.{engine}"
    user = make_user()
    live = [logged_in_client(user) for _ in range(3)]
    expired = [login(user) for _ in range(7)]
    for key in expired:
        expire(key)
    anonymous_expired = Session.objects.create(
        session_key="x" * 32, session_data="", expire_date=timezone.now() - timedelta(days=1)
    )

    summary = maintenance.clearsessions(batch_size=2)

    assert summary.sessions_deleted == 8
    assert summary.mappings_pruned == 7
    assert not summary.skipped
    assert not Session.objects.filter(expire_date__lt=timezone.now()).exists()
    assert not Session.objects.filter(pk=anonymous_expired.pk).exists()
    assert Session.objects.count() == 3
    assert all(is_logged_in(c) for c in live)
    assert set(mapped_users()) == {c.session.session_key for c in live}


@pytest.mark.django_db
def test_batches_are_smaller_than_the_data(make_user: Any) -> None:
    user = make_user()
    long_ago = timezone.now() - timedelta(days=1)
    # Rows of ~1.5 kB: five to a PostgreSQL page, whose ranges are the unit of a batch there.
    expired = [
        Session(session_key=f"{i:032d}", session_data="x" * 1500, expire_date=long_ago)
        for i in range(40)
    ]
    Session.objects.bulk_create(expired)
    UserSession.objects.bulk_create(
        [UserSession(user=user, session_key=s.session_key) for s in expired]
    )
    live = login(user)
    seen: dict[str, list[int]] = {}

    summary = maintenance.clearsessions(
        batch_size=5, progress=lambda phase, done: seen.setdefault(phase, []).append(done)
    )

    assert (summary.sessions_deleted, summary.mappings_pruned) == (40, 40)
    for phase in ("sessions", "mappings"):
        counts = seen[phase]
        steps = [b - a for a, b in zip([0, *counts], counts, strict=False)]
        # Many short transactions, none bigger than the batch size.
        assert len([n for n in steps if n]) >= 8, (phase, counts)
        assert max(steps) <= 5, (phase, counts)
        assert counts[-1] == 40
    assert mapped_users() == {live: user.pk}


@pytest.mark.django_db
def test_a_delete_receiver_on_sessions_is_honoured_batch_by_batch(make_user: Any) -> None:
    user = make_user()
    live = login(user)
    expired = [login(user) for _ in range(5)]
    for key in expired:
        expire(key)
    deleted: list[str] = []

    def on_delete(sender: Any, instance: Session, **kwargs: Any) -> None:
        deleted.append(instance.session_key)

    # Another app listening to session deletes must still hear about every row.
    pre_delete.connect(on_delete, sender=Session, dispatch_uid="test-maintenance")
    try:
        summary = maintenance.clearsessions(batch_size=2)
    finally:
        pre_delete.disconnect(sender=Session, dispatch_uid="test-maintenance")

    assert summary.sessions_deleted == 5
    assert sorted(deleted) == sorted(expired)
    assert list(Session.objects.values_list("session_key", flat=True)) == [live]


@pytest.mark.django_db
def test_prune_orphans_removes_the_three_kinds_of_orphan(
    session_engine: str, make_user: Any
) -> None:
    alice, bob = make_user(), make_user()
    live = login(alice)
    gone = login(alice)
    delete_stored(gone)
    expired = login(alice)
    expire(expired)
    # A mapping that names alice for a session that is bob's.
    bobs = login(bob)
    UserSession.objects.filter(session_key=bobs).update(user=alice)
    # A mapping left on a session that is no longer logged in at all.
    anonymous = Client()
    anonymous.get("/t/anon/")
    anonymous_key = str(anonymous.session.session_key)
    UserSession.objects.create(user=alice, session_key=anonymous_key)

    summary = maintenance.prune_orphans(batch_size=2)

    assert mapped_users() == {live: alice.pk, bobs: bob.pk}
    assert (summary.mappings_pruned, summary.mappings_relinked) == (3, 1)
    # Nothing but mappings was touched.
    assert engines.store_class()().exists(anonymous_key)
    assert engines.store_class()().exists(bobs)


@pytest.mark.django_db
def test_a_mapping_moved_to_a_live_key_during_the_prune_is_kept(make_user: Any) -> None:
    user = make_user()
    first, second = login(user), login(user)
    delete_stored(first)
    delete_stored(second)
    rotated = login(user)
    UserSession.objects.filter(session_key=rotated).delete()
    moved = False

    def rotate_second_after_first_batch(phase: str, done: int) -> None:
        nonlocal moved
        if phase == "mappings" and not moved:
            # What link_session does when that session's key rotates mid-run.
            UserSession.objects.filter(session_key=second).update(session_key=rotated)
            moved = True

    summary = maintenance.prune_orphans(batch_size=1, progress=rotate_second_after_first_batch)

    assert summary.mappings_pruned == 1
    assert mapped_users() == {rotated: user.pk}


@pytest.mark.django_db
def test_clearsessions_checks_owners_only_when_asked(make_user: Any) -> None:
    alice, bob = make_user(), make_user()
    bobs = login(bob)
    UserSession.objects.filter(session_key=bobs).update(user=alice)

    assert maintenance.clearsessions().mappings_relinked == 0
    assert mapped_users() == {bobs: alice.pk}

    assert maintenance.clearsessions(verify_owners=True).mappings_relinked == 1
    assert mapped_users() == {bobs: bob.pk}


@pytest.mark.django_db
def test_ownership_check_is_bounded_per_run_and_rotates(make_user: Any, settings: Any) -> None:
    settings.REVOCATION_OWNER_CHECK_ROWS = 2
    alice, bob = make_user(), make_user()
    keys = [login(bob) for _ in range(5)]
    UserSession.objects.update(user=alice)

    relinked = [maintenance.prune_orphans(batch_size=1).mappings_relinked for _ in range(3)]

    assert relinked == [2, 2, 1]
    assert mapped_users() == dict.fromkeys(keys, bob.pk)
    # The rotation wrapped around: the next run starts again from the first row.
    UserSession.objects.filter(session_key=keys[0]).update(user=alice)
    assert maintenance.prune_orphans(batch_size=1).mappings_relinked == 1


@pytest.mark.django_db
def test_a_mapping_to_a_deleted_owner_is_pruned_not_relinked(make_user: Any) -> None:
    alice, bob = make_user(), make_user()
    bobs = login(bob)
    UserSession.objects.filter(session_key=bobs).update(user=alice)
    Session.objects.filter(pk=bobs).update(
        session_data=engines.store_class()().encode({SESSION_KEY: "987654321"})
    )

    summary = maintenance.prune_orphans()

    assert (summary.mappings_pruned, summary.mappings_relinked) == (1, 0)
    assert not UserSession.objects.exists()


@pytest.mark.django_db
def test_signed_cookie_mappings_are_pruned_once_no_cookie_can_be_valid(
    make_user: Any, settings: Any
) -> None:
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    user = make_user()
    now = timezone.now()
    lifetime = timedelta(seconds=settings.SESSION_COOKIE_AGE + app_settings.TOUCH_INTERVAL)
    old = UserSession.objects.create(user=user, session_key="a" * 32, last_seen_at=now - lifetime)
    recent = UserSession.objects.create(user=user, session_key="b" * 32, last_seen_at=now)

    summary = maintenance.clearsessions()

    assert summary.sessions_deleted == 0
    assert "nothing to clear server-side" in summary.notes[0]
    assert list(UserSession.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not UserSession.objects.filter(pk=old.pk).exists()


@pytest.mark.django_db
def test_finished_requests_are_pruned_after_the_retention_period(
    make_user: Any, settings: Any
) -> None:
    settings.REVOCATION_REQUEST_RETENTION_DAYS = 30
    now = timezone.now()
    old, recent = now - timedelta(days=31), now - timedelta(days=29)

    def request(state: str, finished_at: Any) -> int:
        row = RevocationRequest.objects.create(
            target=RevocationRequest.Target.EVERYONE, state=state, finished_at=finished_at
        )
        return row.pk

    old_done, old_failed = request(State.DONE, old), request(State.FAILED, old)
    kept = {request(State.DONE, recent), request(State.RUNNING, None), request(State.PENDING, None)}

    assert maintenance.prune_orphans(batch_size=1).requests_pruned == 2
    assert set(RevocationRequest.objects.values_list("pk", flat=True)) == kept
    assert not RevocationRequest.objects.filter(pk__in=[old_done, old_failed]).exists()

    settings.REVOCATION_REQUEST_RETENTION_DAYS = 0
    request(State.DONE, old)
    assert maintenance.prune_orphans().requests_pruned == 0


@pytest.mark.django_db
def test_old_finished_requests_lose_their_personal_data_but_keep_what_happened(
    make_user: Any, settings: Any
) -> None:
    settings.REVOCATION_AUDIT_PERSONAL_DATA_DAYS = 30
    settings.REVOCATION_REQUEST_RETENTION_DAYS = 0
    asker, target = make_user(), make_user()
    now = timezone.now()
    old, recent = now - timedelta(days=31), now - timedelta(days=29)

    def request(state: str, finished_at: Any, **fields: Any) -> RevocationRequest:
        return RevocationRequest.objects.create(
            target=RevocationRequest.Target.SESSIONS,
            state=state,
            finished_at=finished_at,
            reason="Alice's laptop was stolen",
            requested_by=asker,
            user_ids=[target.pk],
            session_ids=[7, 8],
            keep_session_key="k" * 32,
            keep_login_id="login",
            users_total=1,
            users_done=1,
            sessions_revoked=2,
            **fields,
        )

    erased = [request(State.DONE, old), request(State.FAILED, old, error="broker down")]
    kept = [request(State.DONE, recent), request(State.RUNNING, None), request(State.PENDING, None)]

    # batch_size=1: one row per transaction, until a batch comes up short.
    assert maintenance.prune_orphans(batch_size=1).requests_erased == 2

    for row in erased:
        row.refresh_from_db()
        assert (row.requested_by_id, row.reason, row.user_ids, row.session_ids) == (
            None,
            "",
            [],
            [],
        )
        assert (row.keep_session_key, row.keep_login_id) == ("", "")
        # What happened stays: the kind of target, the counts, the times, the error.
        assert (row.users_total, row.users_done, row.sessions_revoked) == (1, 1, 2)
        assert row.finished_at == old and row.target == RevocationRequest.Target.SESSIONS
        assert selectors.describe_target(row) == "sessions of a user (ids erased)"
    assert RevocationRequest.objects.get(pk=erased[1].pk).error == "broker down"
    for row in kept:
        row.refresh_from_db()
        assert (row.requested_by_id, row.reason, row.user_ids) == (
            asker.pk,
            "Alice's laptop was stolen",
            [target.pk],
        )
    # Erased rows no longer match: the next run finds nothing to do.
    assert maintenance.clearsessions().requests_erased == 0


@pytest.mark.django_db
def test_personal_data_is_kept_by_default(make_user: Any, settings: Any) -> None:
    settings.REVOCATION_REQUEST_RETENTION_DAYS = 0  # the row stays, for as long as it may
    asker = make_user()
    row = RevocationRequest.objects.create(
        target=RevocationRequest.Target.USERS,
        state=State.DONE,
        finished_at=timezone.now() - timedelta(days=3650),
        requested_by=asker,
        user_ids=[asker.pk],
        reason="why",
    )
    assert app_settings.AUDIT_PERSONAL_DATA_DAYS == 0
    assert maintenance.prune_orphans().requests_erased == 0
    row.refresh_from_db()
    assert (row.requested_by_id, row.user_ids, row.reason) == (asker.pk, [asker.pk], "why")
    assert selectors.describe_target(row) == f"users {asker.pk}"


@pytest.mark.django_db(transaction=True)
def test_clearsessions_task_runs_on_a_real_worker(make_user: Any, start_worker: Any) -> None:
    user = make_user()
    live = logged_in_client(user)
    expired = [login(user) for _ in range(3)]
    for key in expired:
        expire(key)
    gone = login(user)
    delete_stored(gone)
    start_worker()

    tasks.clearsessions.delay()

    wait_until(
        lambda: (
            not Session.objects.filter(pk__in=expired).exists()
            and not UserSession.objects.filter(session_key=gone).exists()
        ),
        timeout=90,
        what="the worker to clear expired sessions and orphans",
    )
    assert is_logged_in(live)
    assert set(mapped_users()) == {live.session.session_key}


@pytest.mark.django_db
def test_a_scheduled_run_logs_its_progress_and_summary(
    make_user: Any, caplog: pytest.LogCaptureFixture
) -> None:
    user = make_user()
    for _ in range(3):
        expire(login(user))

    with caplog.at_level("INFO", logger="revocation"):
        tasks.clearsessions()

    messages = [r.getMessage() for r in caplog.records if r.name == "revocation"]
    assert any("clearsessions: expired sessions deleted 3 " in m for m in messages), messages
    assert any("clearsessions: orphaned mappings pruned 3 " in m for m in messages), messages
    [done] = [m for m in messages if " done: " in m]
    assert "sessions_deleted=3 mappings_pruned=3" in done
    assert "seconds=" in done


def flush_waits_of_batches() -> tuple[list[tuple[str, str]], Any]:
    """Return a list and a wrapper that records synchronous_commit in each maintenance batch."""
    seen: list[tuple[str, str]] = []

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        phase = "sessions" if "ctid >=" in sql else "mappings" if sql.startswith("WITH w") else ""
        if phase:
            # On the raw connection: the batch's own cursor keeps its rowcount.
            raw = context["connection"].connection
            seen.append((phase, raw.execute("SHOW synchronous_commit").fetchone()[0]))
        return result

    return seen, wrapper


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return str(cursor.fetchone()[0])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the database is not PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_batches_alone_commit_without_waiting_for_the_wal_flush(make_user: Any) -> None:
    user = make_user()
    live = login(user)
    for key in [login(user) for _ in range(6)]:
        expire(key)
    seen, wrapper = flush_waits_of_batches()

    with connection.execute_wrapper(wrapper):
        summary = maintenance.clearsessions(batch_size=2)

    assert (summary.sessions_deleted, summary.mappings_pruned) == (6, 6)
    # A lost commit only leaves rows the next run deletes: no fsync wait per batch...
    assert {phase for phase, _ in seen} == {"sessions", "mappings"}, seen
    assert all(value == "off" for _, value in seen), seen
    # ...and none skipped after: the connection's next transaction may be a revocation.
    assert synchronous_commit() == "on"
    assert mapped_users() == {live: user.pk}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the database is not PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_batches_inside_a_callers_transaction_leave_its_commit_durable(make_user: Any) -> None:
    user = make_user()
    for key in [login(user) for _ in range(3)]:
        expire(key)
    seen, wrapper = flush_waits_of_batches()

    with transaction.atomic(), connection.execute_wrapper(wrapper):
        deleted = maintenance.delete_expired_sessions(now=timezone.now(), batch_size=2)
        pruned, _ = maintenance.prune_mappings(now=timezone.now(), batch_size=2)
        after = synchronous_commit()

    assert (deleted, pruned) == (3, 3)
    assert seen, "no batch was seen"
    assert all(value == "on" for _, value in seen), seen
    assert after == "on"
