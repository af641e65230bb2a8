"""Bulk revocation: groups, scopes, everyone; cutoffs, overlaps, bad targets, backfill."""

from __future__ import annotations

import io
import json
import re
from importlib import import_module
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from revocation import exceptions, services, targets
from revocation.models import RevocationFence, RevocationRequest, UserSession
from tests.conftest import is_logged_in, logged_in_client
from tests.orgs.models import Membership, Org
from tests.support import assert_sessions_gone, assert_sessions_kept, session_key

State = RevocationRequest.State


def group_with(name: str, users: list[Any]) -> Group:
    group = Group.objects.create(name=name)
    group.user_set.add(*users)
    return group


def unmapped_session(user: Any | None) -> str:
    """Store a session the way a site without this app did: no UserSession row."""
    store = import_module(django_settings.SESSION_ENGINE).SessionStore()
    if user is not None:
        store[SESSION_KEY] = str(user.pk)
    else:
        store["cart"] = [1, 2]
    store.save()
    return str(store.session_key)


def session_exists(key: str) -> bool:
    return bool(import_module(django_settings.SESSION_ENGINE).SessionStore().exists(key))


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_group_revocation_spares_non_members(
    session_engine: str, make_user: Any, settings: Any, start_worker: Any, wait_done: Any
) -> None:
    settings.REVOCATION_BATCH_SIZE = 2
    members, outsider = [make_user() for _ in range(5)], make_user()
    group_with("sales", members)
    clients = [logged_in_client(u) for u in members]
    kept = logged_in_client(outsider)
    start_worker()

    request = wait_done(services.revoke_sessions(group="sales", reason="incident 7"))

    assert request.state == State.DONE
    assert (request.users_done, request.users_total, request.sessions_revoked) == (5, 5, 5)
    assert_sessions_gone(session_key(c) for c in clients)
    assert_sessions_kept([session_key(kept)])
    assert not any(is_logged_in(c) for c in clients)
    assert is_logged_in(kept)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_scope_revocation_resolves_through_the_project_model(
    make_user: Any, start_worker: Any, wait_done: Any
) -> None:
    acme, other = Org.objects.create(name="acme"), Org.objects.create(name="other")
    staff = [make_user() for _ in range(3)]
    outsider = make_user()
    for u in staff:
        Membership.objects.create(org=acme, user=u)
    Membership.objects.create(org=other, user=outsider)
    clients = [logged_in_client(u) for u in staff]
    kept = logged_in_client(outsider)
    start_worker()

    request = wait_done(services.revoke_sessions(scope=("org", acme.pk)))

    assert targets.describe(request) == f"org={acme.pk}"
    assert (request.users_total, request.sessions_revoked) == (3, 3)
    assert_sessions_gone(session_key(c) for c in clients)
    assert_sessions_kept([session_key(kept)])
    assert not any(is_logged_in(c) for c in clients)
    assert is_logged_in(kept)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_everyone_removes_unmapped_sessions_but_not_later_logins(
    make_user: Any, settings: Any, start_worker: Any, wait_done: Any
) -> None:
    settings.REVOCATION_BATCH_SIZE = 2
    users = [make_user() for _ in range(3)]
    clients = [logged_in_client(u) for u in users]
    legacy = unmapped_session(users[0])  # from before the app was installed
    anonymous = unmapped_session(None)
    request = services.revoke_sessions(everyone=True)
    later = logged_in_client(users[1])  # logs back in after the request
    start_worker()

    wait_done(request)

    assert request.state == State.DONE
    assert_sessions_gone([*(session_key(c) for c in clients), legacy, anonymous])
    assert_sessions_kept([session_key(later)])
    assert not any(is_logged_in(c) for c in clients)
    assert not session_exists(legacy) and not session_exists(anonymous)
    assert is_logged_in(later)
    # Three mapped sessions plus the two unmapped ones.
    assert request.sessions_revoked == 5


@pytest.mark.django_db(transaction=True)
def test_login_during_a_long_job_is_not_revoked(make_user: Any, settings: Any) -> None:
    from revocation.services.jobs import _process_page

    settings.REVOCATION_BATCH_SIZE = 1
    users = [make_user() for _ in range(3)]
    group_with("night-shift", users)
    old = [logged_in_client(u) for u in users]
    request = services.revoke_sessions(group="night-shift")
    # The job has done page 1 of 3 when the last user logs in again.
    assert _process_page(request.pk) is True
    relogged = logged_in_client(users[2])
    assert services.run_request(request.pk, budget_seconds=60) is False

    assert_sessions_gone(session_key(c) for c in old)
    assert_sessions_kept([session_key(relogged)])
    assert not any(is_logged_in(c) for c in old)
    assert is_logged_in(relogged)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_two_overlapping_requests_both_complete(
    make_user: Any, settings: Any, start_worker: Any, wait_done: Any
) -> None:
    settings.REVOCATION_BATCH_SIZE = 1
    users = [make_user() for _ in range(8)]
    group_with("first", users[:5])
    group_with("second", users[3:])
    clients = [logged_in_client(u) for u in users]
    # Two pool processes: the two jobs run at the same time.
    start_worker(concurrency=2)

    first = services.revoke_sessions(group="first")
    second = services.revoke_sessions(group="second")
    wait_done(first), wait_done(second)

    assert first.state == second.state == State.DONE
    assert_sessions_gone(session_key(c) for c in clients)
    assert not any(is_logged_in(c) for c in clients)
    # Each session is counted by exactly one of the two requests.
    assert first.sessions_revoked + second.sessions_revoked == len(users)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, exceptions.InvalidTarget, "exactly one"),
        ({"group": "x", "everyone": True}, exceptions.InvalidTarget, "exactly one"),
        ({"group": "nope"}, exceptions.UnknownGroup, "unknown group 'nope'"),
        ({"scope": ("planet", 3)}, exceptions.UnknownScope, "unknown scope 'planet'"),
        ({"scope": "org=3"}, exceptions.InvalidTarget, "(name, value) pair"),
        ({"user_ids": []}, exceptions.InvalidTarget, "user_ids is empty"),
        ({"user_ids": ["abc"]}, exceptions.UnknownUser, "invalid user id"),
        # Blank never widens: an unset variable is an error, not "everyone".
        ({"group": ""}, exceptions.InvalidTarget, "group name is blank"),
        ({"group": "  "}, exceptions.InvalidTarget, "group name is blank"),
        ({"scope": ("", "3")}, exceptions.InvalidTarget, "scope name is blank"),
        ({"scope": ("org", "")}, exceptions.InvalidTarget, "scope value is blank"),
        ({"scope": ("org", " ")}, exceptions.InvalidTarget, "scope value is blank"),
        ({"user_ids": [""]}, exceptions.UnknownUser, "invalid user id: ''"),
        ({"user_ids": [None]}, exceptions.UnknownUser, "invalid user id: None"),
        ({"user_ids": "12"}, exceptions.InvalidTarget, "must be a list of ids"),
        # True is 1 to Python: a flag must never name user 1, nor "yes" mean everyone.
        ({"user_ids": [True]}, exceptions.UnknownUser, "invalid user id: True"),
        ({"everyone": "yes"}, exceptions.InvalidTarget, "everyone must be True or False"),
        ({"everyone": 1}, exceptions.InvalidTarget, "everyone must be True or False"),
        ({"scope": ("org", True)}, exceptions.InvalidTarget, "string or an integer"),
        # PostgreSQL refuses NUL: refuse it first, with a clear message.
        ({"group": "a\x00b"}, exceptions.InvalidRequest, "group name must not contain NUL"),
        ({"scope": ("org", "1\x00")}, exceptions.InvalidRequest, "must not contain NUL"),
        ({"everyone": True, "reason": "\x00"}, exceptions.InvalidRequest, "reason must not"),
        ({"everyone": True, "reason": "r" * 256}, exceptions.InvalidRequest, "the most is 255"),
        # A value the resolver cannot use is refused now, not when the job runs.
        ({"scope": ("org", "abc")}, exceptions.InvalidTarget, "invalid value 'abc' for scope"),
        ({"scope": ("org", "9" * 30)}, exceptions.InvalidTarget, "less than or equal to"),
    ],
)
def test_invalid_targets_raise_and_create_nothing(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        services.revoke_sessions(**kwargs)
    assert issubclass(error, ValueError)
    assert not RevocationRequest.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--group", "nope"], "unknown group 'nope'"),
        (["--scope", "org"], "--scope must look like NAME=VALUE"),
        (["--scope", "planet=3"], "unknown scope 'planet'"),
        (["--group", ""], "group name is blank"),
        (["--scope", ""], "--scope must look like NAME=VALUE"),
        (["--scope", "org="], "--scope must look like NAME=VALUE"),
        (["--scope", "org=abc"], "invalid value 'abc' for scope 'org'"),
        (["--user", ""], "unknown user ''"),
        # Non-ASCII digits are not ids (isdigit() says they are).
        (["--user", "\u0661"], "unknown user '\u0661'"),
        (["--user", "\u00b2"], "unknown user '\u00b2'"),
        (["--user", "a\x00"], "--user must not contain NUL"),
        (["--all", "--no-input", "--reason", "r" * 256], "reason is 256 characters long"),
    ],
)
def test_command_rejects_bad_targets(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("revoke_sessions", *args, stdout=io.StringIO())
    assert not RevocationRequest.objects.exists()


@pytest.mark.django_db
def test_the_longest_scope_name_and_value_are_accepted(settings: Any) -> None:
    name = "n" * 64
    settings.REVOCATION_SCOPES = {name: "tests.scopes.named"}
    request = services.revoke_sessions(scope=(name, "v" * 255))
    assert RevocationFence.objects.filter(key=f"scope:{name}:{'v' * 255}").exists()
    assert request.scope_value == "v" * 255


@pytest.mark.django_db
def test_scope_value_is_stored_in_the_resolvers_canonical_form() -> None:
    request = services.revoke_sessions(scope=("org", " 042"))
    assert request.scope_value == "42"


@pytest.mark.django_db
def test_all_needs_confirmation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError, match="not confirmed"):
        call_command("revoke_sessions", "--all", stdout=io.StringIO())
    assert not RevocationRequest.objects.exists()
    monkeypatch.setattr("builtins.input", lambda prompt: "yes")
    call_command("revoke_sessions", "--all", stdout=io.StringIO())
    out = io.StringIO()
    call_command("revoke_sessions", "--all", "--no-input", "--json", stdout=out)
    assert json.loads(out.getvalue().strip().splitlines()[-1])["target"] == "everyone"
    assert RevocationRequest.objects.filter(target="everyone").count() == 2


class FakeTerminal(io.StringIO):
    """A captured stream that says it is a terminal, so the progress bar is drawn."""

    def isatty(self) -> bool:
        return True


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_wait_draws_a_progress_bar_on_a_terminal(
    make_user: Any, settings: Any, start_worker: Any
) -> None:
    from revocation.management.commands._output import wait

    settings.REVOCATION_BATCH_SIZE = 1
    users = [make_user() for _ in range(4)]
    group_with("ops", users)
    clients = [logged_in_client(u) for u in users]
    start_worker()
    request = services.revoke_sessions(group="ops")
    terminal = FakeTerminal()

    assert wait(request.pk, stream=terminal, poll=0.05).state == State.DONE
    drawn = terminal.getvalue()
    assert "4/4" in drawn
    assert "user/s" in drawn or "s/user" in drawn  # the rate
    assert "4 sessions revoked, done" in drawn
    assert_sessions_gone(session_key(c) for c in clients)


@pytest.mark.django_db
def test_admin_force_logout_action_creates_one_request(make_user: Any) -> None:
    admin = make_user(is_staff=True, is_superuser=True)
    targets = [make_user(), make_user()]
    client = Client()
    client.force_login(admin)
    response = client.post(
        "/admin/auth/user/",
        {"action": "force_logout_users", "_selected_action": [u.pk for u in targets]},
        follow=True,
    )
    request = RevocationRequest.objects.get()
    assert sorted(request.user_ids) == sorted(u.pk for u in targets)
    assert request.requested_by == admin
    assert f"/admin/revocation/revocationrequest/{request.pk}/change/" in response.content.decode()

    group = group_with("contractors", targets)
    client.post(
        "/admin/auth/group/", {"action": "force_logout_groups", "_selected_action": [group.pk]}
    )
    assert RevocationRequest.objects.filter(group_name="contractors").count() == 1
    page = client.get(f"/admin/revocation/revocationrequest/{request.pk}/change/")
    assert "0/2 users" in page.content.decode()


@pytest.mark.django_db
def test_admin_action_needs_permission(make_user: Any) -> None:
    from django.contrib.auth.models import Permission

    staff = make_user(is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_user", "change_user"])
    )
    client = Client()
    client.force_login(staff)
    client.post(
        "/admin/auth/user/", {"action": "force_logout_users", "_selected_action": [staff.pk]}
    )
    assert not RevocationRequest.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("engine", ["db", "cached_db"])
def test_backfill_links_existing_sessions(engine: str, make_user: Any, settings: Any) -> None:
    settings.SESSION_ENGINE = f"django.contrib.sessions.backends.{engine}"
    users = [make_user() for _ in range(5)]
    keys = [unmapped_session(u) for u in users]
    unmapped_session(None)  # anonymous: nothing to link
    ghost = unmapped_session(users[0])
    UserSession.objects.all().delete()
    type(users[0]).objects.filter(pk=users[0].pk).delete()  # its sessions have no user now

    err = io.StringIO()
    call_command("backfill_user_sessions", "--batch", "2", stdout=io.StringIO(), stderr=err)

    linked = dict(UserSession.objects.values_list("session_key", "user_id"))
    assert linked == {k: u.pk for k, u in zip(keys[1:], users[1:], strict=True)}
    assert ghost not in linked
    assert "resume with --after" in err.getvalue()
    # Rerunning (or resuming) is harmless.
    call_command("backfill_user_sessions", stdout=io.StringIO(), stderr=io.StringIO())
    assert UserSession.objects.count() == 4


@pytest.mark.django_db
def test_backfill_refuses_engines_without_a_table(settings: Any) -> None:
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    with pytest.raises(CommandError, match="no session table"):
        call_command("backfill_user_sessions", stdout=io.StringIO())
