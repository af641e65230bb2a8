"""The job pages: a revocation request carried out page by page, in this process, and failed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import Group
from django.core.cache import caches
from django.utils import timezone

from revocation import engines, services
from revocation.models import RevocationRequest, UserSession
from tests.conftest import logged_in_client

pytestmark = pytest.mark.django_db
State = RevocationRequest.State
Phase = RevocationRequest.Phase
TABLE_ENGINES = {
    "db": "django.contrib.sessions.backends.db",
    "cached_db": "django.contrib.sessions.backends.cached_db",
}


@pytest.fixture(params=list(TABLE_ENGINES))
def table_engine(request: pytest.FixtureRequest, settings: Any) -> str:
    """Run the test once per engine that keeps sessions in a table."""
    settings.SESSION_ENGINE = TABLE_ENGINES[request.param]
    return str(request.param)


def unmapped_session(user: Any) -> str:
    """Store a logged-in session of `user` with no mapping, as one from before the app."""
    store = engines.store_class()()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    assert store.session_key is not None
    return store.session_key


def cookie(client: Any) -> str:
    """Return the session key a test client holds."""
    return str(client.cookies[django_settings.SESSION_COOKIE_NAME].value)


def stored(key: str) -> list[str]:
    """Return where session `key` is still kept: its row, its cached copy, its mapping."""
    found = []
    if engines.session_model().objects.filter(session_key=key).exists():
        found.append("row")
    prefix = engines.current().cache_key_prefix
    if prefix is not None and caches[django_settings.SESSION_CACHE_ALIAS].has_key(prefix + key):
        found.append("cached copy")
    if UserSession.objects.filter(session_key=key).exists():
        found.append("mapping")
    return found


def one_page(request: RevocationRequest) -> bool:
    """Carry out one page of `request` (a budget of nothing stops after the first page)."""
    more = services.run_request(request.pk, budget_seconds=0)
    request.refresh_from_db()
    return more


# --- The `everyone` target: mapped sessions, then the unmapped ones -----------------------


def test_everyone_also_deletes_the_sessions_no_mapping_names(
    table_engine: str, make_user: Any
) -> None:
    u, v = make_user(), make_user()
    mapped = cookie(logged_in_client(u))
    legacy = [unmapped_session(u), unmapped_session(v)]
    request = services.revoke_sessions(everyone=True)
    after = cookie(logged_in_client(v))  # signed in after the request: kept

    assert services.run_request(request.pk, budget_seconds=60) is False

    request.refresh_from_db()
    assert (request.state, request.phase) == (State.DONE, Phase.SESSIONS)
    assert {key: stored(key) for key in [mapped, *legacy]} == dict.fromkeys([mapped, *legacy], [])
    assert {"row", "mapping"} <= set(stored(after))
    assert request.sessions_revoked == 3
    assert (request.users_done, request.users_total) == (2, 2)


def test_unmapped_sessions_go_a_page_at_a_time_from_the_cursor(
    make_user: Any, settings: Any
) -> None:
    settings.REVOCATION_BATCH_SIZE = 2
    u = make_user()
    legacy = sorted(unmapped_session(u) for _ in range(5))
    request = services.revoke_sessions(everyone=True)

    left = []
    while one_page(request):
        left.append(sum(1 for key in legacy if stored(key)))
    assert left == [5, 5, 3, 1, 0]  # the user page, the switch, then two sessions a page
    assert request.state == State.DONE
    assert request.sessions_revoked == 5
    # In key order, so a page that runs again resumes after the last key it committed.
    assert request.cursor == legacy[-1]


def test_everyone_on_the_cache_engine_ends_after_the_users(make_user: Any, settings: Any) -> None:
    """No table to page through: the mapped sessions are all the job can find."""
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    u = make_user()
    key = cookie(logged_in_client(u))
    request = services.revoke_sessions(everyone=True)

    assert one_page(request) is True  # the page of users
    assert one_page(request) is False
    assert (request.state, request.phase) == (State.DONE, Phase.USERS)
    assert not engines.store_class()().exists(key)
    assert request.sessions_revoked == 1


# --- Pages of users ---------------------------------------------------------------------


def test_users_are_revoked_a_page_at_a_time_in_id_order(
    make_user: Any, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.REVOCATION_BATCH_SIZE = 2
    users = [make_user() for _ in range(5)]
    keys = [cookie(logged_in_client(u)) for u in users]
    request = services.revoke_sessions(user_ids=[u.pk for u in users])
    caplog.set_level("INFO", logger="revocation")

    assert one_page(request) is True
    assert (request.state, request.users_done, request.users_total) == (State.RUNNING, 2, 5)
    assert [bool(stored(key)) for key in keys] == [False, False, True, True, True]
    assert request.sessions_revoked == 2
    # Progress in the log too, for whoever watches a long job.
    assert f"revocation batch id={request.pk} users=2 sessions=2 users_done=2/5" in (
        caplog.messages
    )

    while one_page(request):
        pass
    assert (request.state, request.users_done, request.sessions_revoked) == (State.DONE, 5, 5)
    assert not any(stored(key) for key in keys)


def test_a_group_request_counts_its_users_when_it_starts(make_user: Any) -> None:
    ops = Group.objects.create(name="ops")
    members = [make_user() for _ in range(3)]
    ops.user_set.add(*members)
    make_user()  # not a member
    request = services.revoke_sessions(group="ops")
    assert (request.state, request.users_total, request.started_at) == (State.PENDING, 0, None)

    services.run_request(request.pk, budget_seconds=60)

    request.refresh_from_db()
    assert (request.state, request.users_total, request.users_done) == (State.DONE, 3, 3)
    assert request.started_at is not None and request.finished_at is not None
    assert request.started_at <= request.finished_at


def test_a_group_is_revoked_a_page_of_members_at_a_time_in_id_order(
    make_user: Any, settings: Any
) -> None:
    """Pages come from the membership table: members only, each once, whatever else they join."""
    settings.REVOCATION_BATCH_SIZE = 2
    users = [make_user() for _ in range(6)]
    members = [users[0], users[2], users[3], users[5]]
    Group.objects.create(name="ops").user_set.add(*members)
    Group.objects.create(name="dev").user_set.add(users[1], users[2])
    keys = [cookie(logged_in_client(u)) for u in users]
    request = services.revoke_sessions(group="ops")

    assert one_page(request) is True
    assert (request.users_done, request.cursor) == (2, str(users[2].pk))
    assert [bool(stored(key)) for key in keys] == [False, True, False, True, True, True]
    while one_page(request):
        pass

    assert (request.state, request.users_done, request.users_total) == (State.DONE, 4, 4)
    assert request.sessions_revoked == 4
    assert [bool(stored(key)) for key in keys] == [False, True, False, False, True, False]


def test_a_scope_is_revoked_a_page_of_members_at_a_time_each_member_once(
    make_user: Any, settings: Any
) -> None:
    """A field resolver's scope is paged on its own rows; two rows of one user are one user."""
    from tests.orgs.models import Membership, Org

    settings.REVOCATION_BATCH_SIZE = 2
    acme, other = Org.objects.create(name="acme"), Org.objects.create(name="other")
    users = [make_user() for _ in range(5)]
    for u in (users[0], users[0], users[1], users[3], users[4]):
        Membership.objects.create(org=acme, user=u)
    Membership.objects.create(org=other, user=users[2])
    keys = [cookie(logged_in_client(u)) for u in users]
    request = services.revoke_sessions(scope=("org", acme.pk))

    assert one_page(request) is True
    assert (request.users_done, request.cursor) == (2, str(users[1].pk))
    assert [bool(stored(key)) for key in keys] == [False, False, True, True, True]
    while one_page(request):
        pass

    assert (request.state, request.users_done, request.users_total) == (State.DONE, 4, 4)
    assert request.sessions_revoked == 4
    assert [bool(stored(key)) for key in keys] == [False, False, True, False, False]


def test_a_group_deleted_during_the_job_revokes_no_one_more(make_user: Any, settings: Any) -> None:
    settings.REVOCATION_BATCH_SIZE = 1
    members = [make_user() for _ in range(3)]
    Group.objects.create(name="temps").user_set.add(*members)
    keys = [cookie(logged_in_client(u)) for u in members]
    request = services.revoke_sessions(group="temps")
    assert one_page(request) is True

    Group.objects.filter(name="temps").delete()

    assert one_page(request) is False
    assert (request.state, request.users_done, request.sessions_revoked) == (State.DONE, 1, 1)
    assert [bool(stored(key)) for key in keys] == [False, True, True]


def test_a_session_kept_by_its_key_alone_survives_the_job(make_user: Any) -> None:
    """Signed in before sign-in ids existed: its mapping has none, the key is all there is."""
    u = make_user()
    here, elsewhere = cookie(logged_in_client(u)), cookie(logged_in_client(u))
    UserSession.objects.update(login_id="")
    request = services.revoke_user_sessions(u, keep_session_key=here)
    assert (request.keep_session_key, request.keep_login_id) == (here, "")

    services.run_request(request.pk, budget_seconds=60)

    assert {"row", "mapping"} <= set(stored(here))
    assert stored(elsewhere) == []


def test_a_page_is_a_heartbeat_and_clears_the_publish_failure(
    make_user: Any, settings: Any
) -> None:
    """A request that makes progress is neither stalled nor waiting for a publish."""
    settings.REVOCATION_BATCH_SIZE = 1
    users = [make_user() for _ in range(2)]
    request = services.revoke_sessions(user_ids=[u.pk for u in users])
    long_ago = timezone.now() - timedelta(hours=1)
    RevocationRequest.objects.filter(pk=request.pk).update(enqueue_failed=True, updated_at=long_ago)

    assert one_page(request) is True

    assert request.enqueue_failed is False
    assert request.updated_at > long_ago + timedelta(minutes=59)
    assert request.pk not in services.sweep_outbox()


def test_a_finished_request_is_never_carried_out_again(make_user: Any) -> None:
    u = make_user()
    request = services.revoke_user_sessions(u)
    services.fail_request(request.pk, error="gave up")
    later = cookie(logged_in_client(u))
    # Even with its fence cleared, a failed request deletes nothing more.
    UserSession.objects.filter(session_key=later).update(created_at=request.created_at)

    assert services.run_request(request.pk, budget_seconds=60) is False

    request.refresh_from_db()
    assert (request.state, request.users_done, request.started_at) == (State.FAILED, 0, None)
    assert stored(later)
    assert services.run_request(10**9, budget_seconds=60) is False  # deleted meanwhile


def test_a_finished_request_is_logged_with_its_counts_and_duration(
    make_user: Any, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.REVOCATION_BATCH_SIZE = 1
    users = [make_user() for _ in range(2)]
    for u in users:
        logged_in_client(u)
    request = services.revoke_sessions(user_ids=[u.pk for u in users])
    caplog.set_level("INFO", logger="revocation")

    while one_page(request):
        pass

    assert request.finished_at and request.started_at
    seconds = (request.finished_at - request.started_at).total_seconds()
    assert seconds > 0  # two pages, two clocks
    assert (
        f"revocation finished id={request.pk} users=2 sessions=2 seconds={seconds:.3f}"
        in caplog.messages
    )


def test_the_done_signal_comes_from_revocation_request(make_user: Any) -> None:
    """Receivers may listen to the sender `RevocationRequest` only."""
    from revocation.signals import sessions_revoked

    u = make_user()
    logged_in_client(u)
    seen: list[tuple[int, int]] = []

    def receiver(
        sender: Any, revocation: RevocationRequest, sessions_revoked: int, **_: Any
    ) -> None:
        seen.append((revocation.pk, sessions_revoked))

    sessions_revoked.connect(receiver, sender=RevocationRequest)
    try:
        request = services.revoke_user_sessions(u)
        services.run_request(request.pk, budget_seconds=60)
    finally:
        sessions_revoked.disconnect(receiver, sender=RevocationRequest)
    assert seen == [(request.pk, 1)]


# --- Failing ----------------------------------------------------------------------------


def test_a_failed_request_records_its_error_and_when(
    make_user: Any, caplog: pytest.LogCaptureFixture
) -> None:
    request = services.revoke_user_sessions(make_user())
    before = timezone.now()
    error = "DatabaseError: " + "x" * 3000

    services.fail_request(request.pk, error=error)

    request.refresh_from_db()
    assert request.state == State.FAILED
    assert request.error == error[:2000]  # the audit log keeps the start of it
    assert request.finished_at is not None and request.finished_at >= before
    assert request.updated_at == request.finished_at
    assert f"revocation failed id={request.pk} error={error}" in caplog.messages


def test_a_done_request_is_never_marked_failed(make_user: Any) -> None:
    request = services.revoke_user_sessions(make_user())
    services.run_request(request.pk, budget_seconds=60)
    request.refresh_from_db()
    finished_at = request.finished_at

    services.fail_request(request.pk, error="a late duplicate delivery failed")

    request.refresh_from_db()
    assert (request.state, request.error, request.finished_at) == (State.DONE, "", finished_at)
