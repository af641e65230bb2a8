"""The UserSession admin: ending sessions through the service, search, filters, the user inline."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.test import Client
from django.utils import timezone

from revocation import admin as revocation_admin
from revocation import services
from revocation.admin import UserSessionInline, attach_user_inline
from revocation.models import UserSession
from tests.conftest import is_logged_in, logged_in_client
from tests.support import assert_sessions_gone, assert_sessions_kept, session_key

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/revocation/usersession/"
# What an operator needs: to see the sessions, and to revoke (`permissions.START`).
OPERATOR = ("view_usersession", "add_revocationrequest")


def staff(make_user: Any, *perms: str) -> Client:
    """Return a client logged in as a staff user with revocation permissions `perms`."""
    return logged_in_client(make_user(is_staff=True, perms=perms))


def row_of(client: Client) -> UserSession:
    """Return the mapping of the session a client holds."""
    return UserSession.objects.get(session_key=session_key(client))


def end_selected(client: Client, *rows: UserSession, follow: bool = True) -> Any:
    """Run the "End selected sessions" action on `rows`."""
    data = {"action": "end_selected", "_selected_action": [row.pk for row in rows]}
    return client.post(CHANGELIST, data, follow=follow)


def listed(client: Client, query: str) -> set[int]:
    """Return the ids of the sessions the changelist shows for `query`."""
    response = client.get(f"{CHANGELIST}?{query}")
    assert response.status_code == 200
    return {row.pk for row in response.context["cl"].result_list}


# --- Ending sessions -------------------------------------------------------------------


def test_the_action_ends_exactly_the_selected_sessions(session_engine: str, make_user: Any) -> None:
    alice, bob = make_user(), make_user()
    ended = [logged_in_client(alice), logged_in_client(bob)]
    kept = logged_in_client(alice)
    operator = staff(make_user, *OPERATOR)
    keys = [session_key(c) for c in ended]
    rows = [row_of(c) for c in ended]

    response = end_selected(operator, *rows)

    assert "2 sessions ended." in response.content.decode()
    # Rows, cached copies (cached_db, cache) and mappings: before any request re-reads them.
    assert_sessions_gone(keys)
    assert_sessions_kept([session_key(kept), session_key(operator)])
    assert not any(is_logged_in(c) for c in ended)
    assert is_logged_in(kept) and is_logged_in(operator)
    # In the admin's history, as Django's own deletions are.
    logged = LogEntry.objects.filter(action_flag=DELETION)
    assert sorted(logged.values_list("object_repr", flat=True)) == sorted(map(str, rows))


def test_the_action_spares_the_operators_own_session(make_user: Any) -> None:
    other = logged_in_client(make_user())
    operator = staff(make_user, *OPERATOR)
    row = row_of(other)

    response = end_selected(operator, row_of(operator), row)

    page = response.content.decode()
    assert "Your own session was not ended" in page
    assert "1 session ended." in page
    assert is_logged_in(operator) and not is_logged_in(other)
    # Nor recorded as deleted in the history.
    assert list(LogEntry.objects.values_list("object_id", flat=True)) == [str(row.pk)]


def test_the_service_never_ends_the_session_it_keeps(session_engine: str, make_user: Any) -> None:
    user = make_user()
    kept, ended = logged_in_client(user), logged_in_client(user)

    count = services.end_sessions(
        [row_of(kept).pk, row_of(ended).pk, 0], keep_session_key=session_key(kept)
    )

    assert count == 1
    assert_sessions_kept([session_key(kept)])
    assert_sessions_gone([session_key(ended)])
    assert services.end_sessions([]) == 0


def test_the_action_refuses_more_sessions_than_it_ends_at_once(
    make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(revocation_admin, "MAX_ENDED_AT_ONCE", 1)
    user = make_user()
    clients = [logged_in_client(user), logged_in_client(user)]
    operator = staff(make_user, *OPERATOR)

    response = end_selected(operator, *(row_of(c) for c in clients))

    assert "Select at most 1 sessions at a time" in response.content.decode()
    assert all(is_logged_in(c) for c in clients)


def test_staff_without_the_permission_cannot_end_sessions(make_user: Any) -> None:
    target = logged_in_client(make_user())
    row = row_of(target)
    viewer = staff(make_user, "view_usersession")

    assert "End selected sessions" not in viewer.get(CHANGELIST).content.decode()
    end_selected(viewer, row)
    assert viewer.post(f"{CHANGELIST}{row.pk}/end/").status_code == 403
    assert "End this session" not in viewer.get(f"{CHANGELIST}{row.pk}/change/").content.decode()

    assert is_logged_in(target)
    assert not LogEntry.objects.exists()


def test_the_permission_alone_does_not_open_the_session_admin(make_user: Any) -> None:
    target = logged_in_client(make_user())
    row = row_of(target)
    revoker = staff(make_user, "add_revocationrequest")

    assert revoker.post(f"{CHANGELIST}{row.pk}/end/").status_code == 403
    assert is_logged_in(target)


def test_the_change_page_button_ends_that_session(session_engine: str, make_user: Any) -> None:
    user = make_user()
    target, other = logged_in_client(user), logged_in_client(user)
    row = row_of(target)
    operator = staff(make_user, *OPERATOR)
    page = operator.get(f"{CHANGELIST}{row.pk}/change/").content.decode()
    assert f'action="{CHANGELIST}{row.pk}/end/"' in page
    assert "End this session" in page
    assert row.session_key not in page

    assert operator.get(f"{CHANGELIST}{row.pk}/end/").status_code == 405
    response = operator.post(f"{CHANGELIST}{row.pk}/end/")

    assert response.status_code == 302 and response["Location"] == CHANGELIST
    assert_sessions_gone([row.session_key])
    assert not is_logged_in(target) and is_logged_in(other)
    again = operator.post(f"{CHANGELIST}{row.pk}/end/", follow=True)
    assert "That session has ended already." in again.content.decode()


# --- Search and filters ----------------------------------------------------------------


def test_search_by_username_email_and_ip(make_user: Any) -> None:
    zed = make_user(username="zed-searched", email="zed@example.org")
    other = make_user(email="someone@example.net")
    zed_row, other_row = row_of(logged_in_client(zed)), row_of(logged_in_client(other))
    UserSession.objects.filter(pk=zed_row.pk).update(ip="10.9.8.7")
    UserSession.objects.filter(pk=other_row.pk).update(ip="192.168.10.9")
    operator = staff(make_user, *OPERATOR)

    assert listed(operator, "q=zed-sear") == {zed_row.pk}
    assert listed(operator, "q=example.org") == {zed_row.pk}
    # The beginning of an address: "10.9." is not found inside 192.168.10.9.
    assert listed(operator, "q=10.9.") == {zed_row.pk}
    assert listed(operator, "q=192.168.") == {other_row.pk}


def test_filters_by_device_country_and_sign_in_age(make_user: Any) -> None:
    user = make_user()
    rows = [row_of(logged_in_client(user)) for _ in range(4)]
    now = timezone.now()
    ages = [timedelta(0), timedelta(days=3), timedelta(days=10), timedelta(days=40)]
    for row, age, device, country in zip(
        rows,
        ages,
        ["Firefox 127 on Linux", "Safari 17 on iOS", "", "Firefox 127 on Linux"],
        ["DE", "FR", "", "DE"],
        strict=True,
    ):
        UserSession.objects.filter(pk=row.pk).update(
            created_at=now - age, device=device, country=country
        )
    today, three_days, ten_days, forty_days = (row.pk for row in rows)
    operator = staff(make_user, *OPERATOR)
    mine = f"q={user.username}"

    page = operator.get(f"{CHANGELIST}?{mine}").content.decode()
    assert "Safari 17 on iOS" in page and "More than 30 days ago" in page
    assert "?device=%28unknown%29" in page and ">Unknown<" in page
    assert listed(operator, f"{mine}&device=Firefox+127+on+Linux") == {today, forty_days}
    assert listed(operator, f"{mine}&country=FR") == {three_days}
    assert listed(operator, f"{mine}&country=%28unknown%29") == {ten_days}
    assert listed(operator, f"{mine}&device=%28unknown%29") == {ten_days}
    assert listed(operator, f"{mine}&signed_in=today") == {today}
    assert listed(operator, f"{mine}&signed_in=7d") == {today, three_days}
    assert listed(operator, f"{mine}&signed_in=30d") == {today, three_days, ten_days}
    assert listed(operator, f"{mine}&signed_in=older") == {forty_days}


def test_the_list_shows_the_recorded_device_else_the_user_agents(make_user: Any) -> None:
    user = make_user()
    recorded, parsed = (row_of(logged_in_client(user)) for _ in range(2))
    UserSession.objects.filter(pk=recorded.pk).update(
        device="Chrome|Android|14|Pixel 8", country="NL", city="Utrecht"
    )
    UserSession.objects.filter(pk=parsed.pk).update(
        device="", user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/127.0"
    )
    operator = staff(make_user, *OPERATOR)

    page = operator.get(f"{CHANGELIST}?q={user.username}").content.decode()

    assert "Chrome on Pixel 8 (Android 14)" in page and "Utrecht, NL" in page
    assert "Firefox on Linux" in page


# --- The user's sessions on the user's page ---------------------------------------------


def user_page(user: Any) -> str:
    """Return the path of `user`'s admin change page."""
    return f"/admin/auth/user/{user.pk}/change/"


def test_the_user_page_lists_that_users_sessions(make_user: Any) -> None:
    user, other = make_user(), make_user()
    mine = [row_of(logged_in_client(user)) for _ in range(2)]
    theirs = row_of(logged_in_client(other))
    UserSession.objects.filter(pk=mine[0].pk).update(device="Pixel 8 (Android 14)")
    UserSession.objects.filter(pk=theirs.pk).update(device="Somebody else's phone")
    superuser = logged_in_client(make_user(is_staff=True, is_superuser=True))

    page = superuser.get(user_page(user)).content.decode()

    assert "Sessions, newest first" in page
    assert "Pixel 8 (Android 14)" in page and "Somebody else" not in page
    for row in mine:
        assert f"{CHANGELIST}{row.pk}/change/" in page
        assert row.session_key not in page
    assert f"{CHANGELIST}{theirs.pk}/change/" not in page


def test_the_user_form_still_saves_with_the_inline(make_user: Any) -> None:
    user = make_user(email="before@example.org")
    rows = [row_of(logged_in_client(user)) for _ in range(2)]
    superuser = logged_in_client(make_user(is_staff=True, is_superuser=True))
    form = superuser.get(user_page(user)).context["adminform"].form
    prefix = "revocation_sessions"
    data = {
        "username": user.username,
        "email": "after@example.org",
        "is_active": "on",
        "date_joined_0": form.initial["date_joined"].date().isoformat(),
        "date_joined_1": "00:00:00",
        f"{prefix}-TOTAL_FORMS": "2",
        f"{prefix}-INITIAL_FORMS": "2",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(sorted(rows, key=lambda r: r.pk, reverse=True)):
        data[f"{prefix}-{i}-id"] = str(row.pk)
        data[f"{prefix}-{i}-user"] = str(user.pk)
    # A session that ends between showing the page and saving it must not block the save.
    UserSession.objects.filter(pk=rows[0].pk).delete()

    response = superuser.post(user_page(user), data)

    assert response.status_code == 302, response.context["errors"]
    user.refresh_from_db()
    assert user.email == "after@example.org"
    assert UserSession.objects.filter(pk=rows[1].pk).exists()


def test_the_inline_shows_the_newest_sessions_only(
    make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(revocation_admin, "INLINE_ROWS", 2)
    user = make_user()
    rows = [row_of(logged_in_client(user)) for _ in range(3)]
    for age, row in enumerate(reversed(rows)):
        UserSession.objects.filter(pk=row.pk).update(
            created_at=timezone.now() - timedelta(hours=age)
        )
    superuser = logged_in_client(make_user(is_staff=True, is_superuser=True))

    page = superuser.get(user_page(user)).content.decode()

    assert f"{CHANGELIST}{rows[0].pk}/change/" not in page
    assert all(f"{CHANGELIST}{row.pk}/change/" in page for row in rows[1:])


def test_the_inline_goes_on_djangos_own_user_admin_only(settings: Any) -> None:
    user_model = get_user_model()
    assert UserSessionInline in admin.site._registry[user_model].inlines

    class ProjectUserAdmin(UserAdmin):
        """A project's own user admin: left alone."""

    for admin_class, switch, attached in [
        (UserAdmin, True, True),
        (ProjectUserAdmin, True, False),
        (UserAdmin, False, False),
    ]:
        settings.REVOCATION_ADMIN_USER_INLINE = switch
        site = admin.AdminSite(name="elsewhere")
        site.register(user_model, admin_class)
        assert attach_user_inline(site) is attached
        assert attach_user_inline(site) is attached  # twice: still one inline
        inlines = list(site._registry[user_model].inlines)
        assert inlines == ([UserSessionInline] if attached else [])
    assert UserAdmin.inlines == ()  # the class itself is untouched
