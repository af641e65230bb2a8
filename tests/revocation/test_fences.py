"""The fence: a revoked cookie is refused on its very next request, on every engine."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from revocation import fencecopy, fences, maintenance, services
from revocation.models import RevocationFence, RevocationRequest, UserSession
from tests.conftest import ALL_ENGINES, is_logged_in, logged_in_client
from tests.orgs.models import Membership, Org
from tests.support import free_port

# Transactional: fences reach the cache on commit, as in production.
pytestmark = pytest.mark.django_db(transaction=True)


def test_stolen_cookie_is_refused_on_the_next_request_without_a_worker(
    any_engine: str, make_user: Any
) -> None:
    victim, bystander = make_user(), make_user()
    attacker = logged_in_client(victim)
    # The attacker keeps a copy of the cookie, as a thief would.
    stolen = Client()
    stolen.cookies = attacker.cookies
    other = logged_in_client(bystander)

    services.revoke_user_sessions(victim, reason="cookie stolen")

    # No worker has run: the request is still pending, yet the cookie is refused.
    assert RevocationRequest.objects.get().state == "pending"
    assert not is_logged_in(stolen)
    assert is_logged_in(other)
    # The victim signs in again after the fence: kept.
    assert is_logged_in(logged_in_client(victim))


def test_kept_session_survives_its_own_fence(any_engine: str, make_user: Any) -> None:
    u = make_user()
    elsewhere = logged_in_client(u)
    here = logged_in_client(u)
    if any_engine == "signed_cookies":
        # No server state to re-stamp: "log out my other sessions" goes through a
        # request of the kept session, as the sessions page and API do.
        response = here.post("/t/revoke-others/")
        assert response.status_code == 200
    else:
        services.revoke_user_sessions(u, keep_session_key=here.session.session_key)
    assert is_logged_in(here)
    assert not is_logged_in(elsewhere)


def test_group_and_scope_fences_apply_to_members_only(make_user: Any) -> None:
    member, outsider = make_user(), make_user()
    Group.objects.create(name="ops").user_set.add(member)
    acme = Org.objects.create(name="acme")
    Membership.objects.create(org=acme, user=member)
    by_group, by_scope = logged_in_client(member), logged_in_client(member)
    kept = logged_in_client(outsider)

    services.revoke_sessions(group="ops")
    assert not is_logged_in(by_group)
    RevocationFence.objects.filter(key="group:ops").delete()
    cache.delete(fences.CACHE_PREFIX + "group:ops")
    fencecopy.reset()

    services.revoke_sessions(scope=("org", acme.pk))
    assert not is_logged_in(by_scope)
    assert is_logged_in(kept)


def test_a_login_looks_up_no_group_or_scope(make_user: Any) -> None:
    u = make_user()
    Group.objects.create(name="ops").user_set.add(u)
    with CaptureQueriesContext(connection) as login:
        client = logged_in_client(u)
    assert not [q for q in login.captured_queries if "auth_group" in q["sql"]]
    assert fences.SCOPES not in client.session
    # No group or scope fence newer than the sign-in: requests look nothing up either.
    services.revoke_sessions(group="ops")
    later = logged_in_client(u)
    with CaptureQueriesContext(connection) as request:
        assert is_logged_in(later)
    assert not [q for q in request.captured_queries if "auth_group" in q["sql"]]
    assert fences.SCOPES not in later.session


def test_group_membership_counts_as_of_the_check_and_is_looked_up_once(make_user: Any) -> None:
    joiner, outsider = make_user(), make_user()
    joining, staying = logged_in_client(joiner), logged_in_client(outsider)
    # Joined after signing in: the group's revocation still reaches the session.
    Group.objects.create(name="ops").user_set.add(joiner)
    services.revoke_sessions(group="ops")
    assert not is_logged_in(joining)
    assert is_logged_in(staying)
    # The outsider's groups were looked up for that fence, and are not looked up again.
    assert staying.session[fences.SCOPES] == []
    with CaptureQueriesContext(connection) as request:
        assert is_logged_in(staying)
    assert not [q for q in request.captured_queries if "auth_group" in q["sql"]]


def test_scopes_stamped_at_sign_in_by_an_earlier_release_still_apply(make_user: Any) -> None:
    u = make_user()
    client = logged_in_client(u)
    session = client.session
    session[fences.SCOPES] = ["group:legacy"]  # as stamped at sign-in, no SCOPES_FOR
    session.save()
    # No such group exists any more: only the stamp can tie the session to it.
    with transaction.atomic():
        fences.record(["group:legacy", fences.SCOPED], timezone.now())
    assert not is_logged_in(client)


def test_a_failing_scope_lookup_is_logged_and_retried(
    make_user: Any, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    u = make_user()
    client = logged_in_client(u)
    settings.REVOCATION_SCOPES = {"gated": "tests.scopes.gated", "broken": "tests.scopes.broken"}
    services.revoke_sessions(scope=("gated", "nobody-here"))
    with caplog.at_level("ERROR", logger="revocation"):
        assert is_logged_in(client)  # the user's own and the global fences still apply
    assert "could not read the groups and scopes" in caplog.text
    assert fences.SCOPES_FOR not in client.session


def test_global_fence_logs_everyone_out_but_not_later_logins(make_user: Any) -> None:
    users = [make_user() for _ in range(3)]
    clients = [logged_in_client(u) for u in users]
    services.revoke_sessions(everyone=True)
    assert not any(is_logged_in(c) for c in clients)
    assert is_logged_in(logged_in_client(users[0]))


def test_session_without_a_sign_in_stamp_predates_every_fence(make_user: Any) -> None:
    from revocation.stamps import AUTH_AT

    u = make_user()
    legacy = logged_in_client(u)
    session = legacy.session
    del session[AUTH_AT]  # logged in before the app was installed
    session.save()
    services.revoke_user_sessions(make_user())  # someone else: no effect
    assert is_logged_in(legacy)
    services.revoke_user_sessions(u)
    assert not is_logged_in(legacy)


def test_fence_is_enforced_from_the_database_when_the_cache_is_down(
    make_user: Any, settings: Any, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    # The warning is logged once a minute: make this test's the first of its minute.
    monkeypatch.setattr(fences, "_last_fallback_log", float("-inf"))
    u = make_user()
    client = logged_in_client(u)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    services.revoke_user_sessions(u)
    assert not is_logged_in(client)
    assert "checking fences in the database" in caplog.text


def test_a_flushed_cache_still_enforces_fences(make_user: Any) -> None:
    u = make_user()
    client = logged_in_client(u)
    services.revoke_user_sessions(u)
    cache.delete(fences.CACHE_PREFIX + f"user:{u.pk}")
    assert not is_logged_in(client)


def test_hot_path_check_makes_no_database_query(make_user: Any) -> None:
    u = make_user()
    client = logged_in_client(u)  # its first request warmed the cache
    session = client.session
    signed_in = float(session[fences_auth_at()])  # loads the session: not the check's cost
    with CaptureQueriesContext(connection) as queries:
        assert fences.is_fenced(session, signed_in) is False
    assert len(queries) == 0
    services.revoke_user_sessions(u)
    with CaptureQueriesContext(connection) as queries:
        assert fences.is_fenced(session, signed_in) is True
    assert len(queries) == 0


def fences_auth_at() -> str:
    from revocation.stamps import AUTH_AT

    return AUTH_AT


def test_middleware_adds_no_query_to_an_authenticated_request(
    make_user: Any, settings: Any
) -> None:
    settings.SESSION_ENGINE = ALL_ENGINES["cache"]
    client = logged_in_client(make_user())
    with CaptureQueriesContext(connection) as with_fence:
        assert is_logged_in(client)
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if m != "revocation.middleware.RevocationMiddleware"
    ]
    with CaptureQueriesContext(connection) as without:
        assert is_logged_in(client)
    assert len(with_fence) == len(without) == 1  # the user row, loaded by auth


def test_old_fences_are_pruned(make_user: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    services.revoke_user_sessions(make_user())
    RevocationFence.objects.update(not_before=timezone.now() - timedelta(days=30))  # 2 x 14 days
    services.revoke_user_sessions(make_user())
    assert maintenance.prune_fences(now=timezone.now(), batch_size=1) == 1
    assert RevocationFence.objects.count() == 1


def test_session_limit_revokes_the_oldest(make_user: Any, settings: Any) -> None:
    settings.REVOCATION_MAX_SESSIONS_PER_USER = 2
    u = make_user()
    first, second = logged_in_client(u), logged_in_client(u)
    third = logged_in_client(u)
    request = RevocationRequest.objects.get(target="sessions")
    oldest = UserSession.objects.get(session_key=first.session.session_key)
    assert request.session_ids == [oldest.pk]
    assert services.run_request(request.pk, budget_seconds=60) is False
    assert not is_logged_in(first)
    assert is_logged_in(second) and is_logged_in(third)


def test_session_limit_can_refuse_the_new_login(make_user: Any, settings: Any) -> None:
    settings.REVOCATION_MAX_SESSIONS_PER_USER = 1
    settings.REVOCATION_MAX_SESSIONS_POLICY = "refuse"
    u = make_user(username="limited")
    existing = logged_in_client(u)
    newcomer = Client()
    response = newcomer.post("/accounts/login/", {"username": "limited", "password": "pw-secret-1"})
    assert response.status_code == 403
    assert "Log out on another device first" in response.content.decode()
    assert not is_logged_in(newcomer)
    assert is_logged_in(existing)
    assert UserSession.objects.filter(user=u).count() == 1
    assert not RevocationRequest.objects.exists()


@pytest.mark.parametrize(
    "target",
    [
        lambda u: {"user_ids": [u.pk]},
        lambda u: {"group": "ops"},
        lambda u: {"scope": ("org", str(Membership.objects.get(user=u).org_id))},
    ],
    ids=["user", "group", "scope"],
)
def test_a_second_revocation_refuses_a_session_signed_in_between(
    make_user: Any, target: Any
) -> None:
    """Revoking the same target again moves its fence forward (it never stays at the first)."""
    u = make_user()
    Group.objects.create(name="ops").user_set.add(u)
    Membership.objects.create(user=u, org=Org.objects.create(name="acme"))
    services.revoke_sessions(**target(u))
    between = logged_in_client(u)
    assert is_logged_in(between)

    services.revoke_sessions(**target(u))

    assert not is_logged_in(between)
    assert is_logged_in(logged_in_client(u))


def test_one_users_revocation_leaves_another_users_fence_alone(make_user: Any) -> None:
    victim, other = make_user(), make_user()
    services.revoke_user_sessions(other)
    before = RevocationFence.objects.get(key=fences.user_key(other.pk)).not_before
    cached_before = fences.fences_of([fences.user_key(other.pk)])

    services.revoke_user_sessions(victim)

    assert RevocationFence.objects.get(key=fences.user_key(other.pk)).not_before == before
    assert fences.fences_of([fences.user_key(other.pk)]) == cached_before
    assert set(RevocationFence.objects.values_list("key", flat=True)) == {
        fences.user_key(victim.pk),
        fences.user_key(other.pk),
    }


def test_no_keys_means_no_fence() -> None:
    assert fences.latest([]) == 0.0
    assert fences.fences_of([]) == {}


def test_the_database_fallback_is_logged_at_most_once_a_minute(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from types import SimpleNamespace

    now = [1000.0]
    # The module's own clock, not time.monotonic for everyone.
    monkeypatch.setattr(fences, "time", SimpleNamespace(monotonic=lambda: now[0]))
    monkeypatch.setattr(fences, "_last_fallback_log", float("-inf"))

    def cache_down(keys: list[str]) -> dict[str, int]:
        raise ConnectionError("the cache went away")

    monkeypatch.setattr(fences.monotonic, "get_many", cache_down)
    warned = []
    for now[0] in (1000.0, 1059.9, 1060.0, 1119.9):
        caplog.clear()
        assert fences.fences_of([fences.GLOBAL]) == {fences.GLOBAL: 0.0}
        warned.append(
            "revocation: cache unavailable, checking fences in the database" in caplog.messages
        )
    assert warned == [True, False, True, False]


def test_a_fence_that_cannot_be_mirrored_is_logged_by_key(
    make_user: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A value cached before would hide the fence until it expires: the log must name it."""
    u = make_user()

    def cache_down(values: dict[str, int], timeout: int) -> None:
        raise ConnectionError("the cache went away")

    monkeypatch.setattr(fences.monotonic, "raise_many", cache_down)
    services.revoke_user_sessions(u)

    assert f"revocation: could not mirror fences ['user:{u.pk}'] into the cache" in (
        caplog.messages
    )
    assert RevocationFence.objects.filter(key=fences.user_key(u.pk)).exists()


def test_fences_hold_without_time_zone_support(make_user: Any, settings: Any) -> None:
    """USE_TZ = False: the database hands back naive local times, compared all the same."""
    settings.USE_TZ = False
    u = make_user()
    before = logged_in_client(u)
    request = services.revoke_user_sessions(u)
    assert request.created_at.tzinfo is None
    after = logged_in_client(u)

    assert not is_logged_in(before)
    assert is_logged_in(after)
    key = fences.user_key(u.pk)
    assert fences.fences_of([key]) == {key: request.created_at.timestamp()}


def test_a_sign_in_at_the_fences_own_instant_is_not_fenced(make_user: Any) -> None:
    """A fence is "not valid before T": a sign-in at T itself is valid, one before it is not."""
    u = make_user()
    session = logged_in_client(u).session
    at = timezone.now().replace(microsecond=250000)
    fences.record([fences.user_key(u.pk)], at)
    signed_in = at.timestamp()

    assert fences.is_fenced(session, signed_in) is False
    assert fences.is_fenced(session, signed_in - 0.001) is True


def test_an_anonymous_session_is_never_fenced() -> None:
    fences.record([fences.GLOBAL], timezone.now())

    assert fences.is_fenced({}, 0.0) is False
