"""The JSON API: shapes, permissions (401/403/404), CSRF, bad input (413/415/422), rate limits."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.test import Client

from revocation import services
from revocation.exceptions import InvalidRequest
from revocation.models import RevocationRequest, UserSession
from revocation.schemas import MAX_ID
from tests.conftest import csrf_client, is_logged_in, logged_in_client
from tests.orgs.models import Membership, Org
from tests.support import link_key, row_of

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_rate_limit")]

SESSION_FIELDS = {
    "id",
    "current",
    "ip",
    "user_agent",
    "device",
    "country",
    "city",
    "created_at",
    "last_seen_at",
    "expires_at",
}
REVOCATION_FIELDS = {
    "id",
    "state",
    "target",
    "reason",
    "users_total",
    "users_done",
    "sessions_revoked",
    "created_at",
    "finished_at",
    "error",
}
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)


def post_json(client: Client, url: str, body: Any, token: str | None = None) -> Any:
    headers = {"X-CSRFToken": token} if token else {}
    return client.post(url, json.dumps(body), content_type="application/json", headers=headers)


@pytest.fixture
def staff(operator: Any) -> Any:
    """A user allowed to start and read revocations."""
    return operator


def test_openapi_document_describes_the_contract(client: Client) -> None:
    doc = client.get("/api/openapi.json").json()

    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) >= {
        "/api/sessions/",
        "/api/sessions/{session_id}",
        "/api/sessions/revoke-others",
        "/api/revocations",
        "/api/revocations/{revocation_id}",
    }
    assert "delete" in doc["paths"]["/api/sessions/{session_id}"]
    schemas = doc["components"]["schemas"]
    assert set(schemas["SessionOut"]["properties"]) == SESSION_FIELDS
    assert set(schemas["RevocationOut"]["properties"]) >= REVOCATION_FIELDS
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.content.decode()
    assert "cdn." not in docs.content.decode()  # served from our static files


@pytest.mark.parametrize(
    "url", ["/api/sessions/", "/api/revocations", "/api/revocations/1", "/api/revocations?limit=5"]
)
def test_anonymous_reads_are_401(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 401
    assert response.json() == {"detail": "not logged in"}


def test_anonymous_write_with_a_csrf_token_is_401_and_creates_nothing() -> None:
    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/login/")
    token = client.cookies["csrftoken"].value
    response = post_json(client, "/api/revocations", {"all": True}, token)
    assert response.status_code == 401
    assert not RevocationRequest.objects.exists()


def test_session_list_marks_the_current_session_and_hides_keys(
    any_engine: str, make_user: Any
) -> None:
    user, other = make_user(), make_user()
    here = Client(headers={"user-agent": CHROME})
    # A real login through the form records the device it came from, with the client
    # hints its POST carries (the login page asked for them).
    here.post(
        "/accounts/login/",
        {"username": user.username, "password": "pw-secret-1"},
        headers={"sec-ch-ua-platform": '"Windows"', "sec-ch-ua-platform-version": '"19.0.0"'},
    )
    elsewhere = logged_in_client(user)
    logged_in_client(other)

    response = here.get("/api/sessions/")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2 and len(body["items"]) == 2
    assert all(set(item) == SESSION_FIELDS for item in body["items"])
    current = [item for item in body["items"] if item["current"]]
    assert len(current) == 1
    assert current[0]["device"] == "Chrome on Windows 11"
    assert (current[0]["country"], current[0]["city"]) == ("", "")
    assert current[0]["ip"] == "127.0.0.1"
    mine = set(UserSession.objects.filter(user=user).values_list("pk", flat=True))
    assert {item["id"] for item in body["items"]} == mine
    for key in (here.session.session_key, elsewhere.session.session_key):
        assert key and key not in response.content.decode()


def test_deleting_another_of_your_sessions_ends_it_at_once(
    any_engine: str, make_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    user = make_user()
    here, token = csrf_client(user)
    elsewhere = logged_in_client(user)
    target = row_of(elsewhere)

    # A signed cookie is ended by a fence, mirrored into the cache when the request commits.
    with django_capture_on_commit_callbacks(execute=True):
        response = here.delete(f"/api/sessions/{target.pk}", headers={"X-CSRFToken": token})

    assert response.status_code == 204
    assert not is_logged_in(elsewhere)
    assert is_logged_in(here)
    assert not UserSession.objects.filter(pk=target.pk).exists()


def test_deleting_the_current_session_logs_you_out(any_engine: str, make_user: Any) -> None:
    user = make_user()
    here, token = csrf_client(user)
    current = row_of(here)

    response = here.delete(f"/api/sessions/{current.pk}", headers={"X-CSRFToken": token})

    assert response.status_code == 204
    assert not is_logged_in(here)
    assert not UserSession.objects.filter(pk=current.pk).exists()


def test_another_users_session_id_is_404_and_nothing_is_deleted(
    any_engine: str, make_user: Any
) -> None:
    attacker, victim = make_user(), make_user()
    client, token = csrf_client(attacker)
    victim_client = logged_in_client(victim)
    victims = UserSession.objects.get(user=victim)
    missing_id = UserSession.objects.order_by("-pk").first().pk + 1000  # type: ignore[union-attr]

    response = client.delete(f"/api/sessions/{victims.pk}", headers={"X-CSRFToken": token})
    missing = client.delete(f"/api/sessions/{missing_id}", headers={"X-CSRFToken": token})

    # Indistinguishable from an id that does not exist: existence is not leaked.
    assert response.status_code == missing.status_code == 404
    assert response.json() == missing.json() == {"detail": "no such session"}
    assert is_logged_in(victim_client)
    assert UserSession.objects.filter(pk=victims.pk).exists()


def test_delete_without_csrf_token_is_403_and_nothing_is_deleted(
    any_engine: str, make_user: Any
) -> None:
    user = make_user()
    here, _ = csrf_client(user)
    elsewhere = logged_in_client(user)
    target = row_of(elsewhere)

    response = here.delete(f"/api/sessions/{target.pk}")

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert is_logged_in(elsewhere)
    assert UserSession.objects.filter(pk=target.pk).exists()


def test_revoke_others_accepts_a_request_that_keeps_this_session(
    any_engine: str, make_user: Any
) -> None:
    user = make_user()
    here, token = csrf_client(user)

    response = post_json(here, "/api/sessions/revoke-others", {}, token)

    assert response.status_code == 202
    body = response.json()
    assert set(body) >= REVOCATION_FIELDS
    request = RevocationRequest.objects.get(pk=body["id"])
    assert request.user_ids == [user.pk]
    assert request.keep_session_key == link_key(here)
    assert request.requested_by == user
    assert body["state"] == "pending"


def test_revoke_others_without_csrf_token_is_403_and_creates_nothing(make_user: Any) -> None:
    here, _ = csrf_client(make_user())
    response = here.post("/api/sessions/revoke-others")
    assert response.status_code == 403
    assert not RevocationRequest.objects.exists()


@pytest.mark.parametrize("fields", [{}, {"is_staff": True}], ids=["plain user", "is_staff alone"])
def test_revocation_endpoints_are_403_without_the_permissions(
    make_user: Any, staff: Any, fields: dict[str, Any]
) -> None:
    existing = services.revoke_sessions(everyone=True, requested_by=staff)
    client, token = csrf_client(make_user(**fields))

    created = post_json(client, "/api/revocations", {"all": True}, token)
    listed = client.get("/api/revocations")
    shown = client.get(f"/api/revocations/{existing.pk}")

    assert created.json() == {
        "detail": "this needs the revocation.add_revocationrequest permission"
    }
    for response in (listed, shown):
        assert response.json() == {
            "detail": "this needs the revocation.view_revocationrequest permission"
        }
    assert {r.status_code for r in (created, listed, shown)} == {403}
    assert list(RevocationRequest.objects.all()) == [existing]


def test_view_permission_reads_but_cannot_start(make_user: Any, staff: Any) -> None:
    existing = services.revoke_sessions(everyone=True, requested_by=staff)
    client, token = csrf_client(make_user(perms=("view_revocationrequest",)))

    assert client.get(f"/api/revocations/{existing.pk}").status_code == 200
    assert client.get("/api/revocations").json()["count"] == 1
    assert post_json(client, "/api/revocations", {"all": True}, token).status_code == 403
    assert RevocationRequest.objects.count() == 1


def test_add_permission_starts_but_cannot_read(make_user: Any) -> None:
    target = make_user()
    client, token = csrf_client(make_user(perms=("add_revocationrequest",)))

    created = post_json(client, "/api/revocations", {"user_ids": [target.pk]}, token)

    assert created.status_code == 202
    assert client.get(f"/api/revocations/{created.json()['id']}").status_code == 403


def test_superuser_may_start_and_read(make_user: Any) -> None:
    client, token = csrf_client(make_user(is_superuser=True))
    created = post_json(client, "/api/revocations", {"all": True}, token)
    assert created.status_code == 202
    assert client.get(f"/api/revocations/{created.json()['id']}").status_code == 200


@pytest.mark.parametrize(
    ("body", "expect"),
    [
        ({"group": "incident"}, {"target": "group", "group_name": "incident"}),
        ({"scope": "org", "value": 42}, {"target": "scope", "scope_value": "42"}),
        ({"all": True}, {"target": "everyone"}),
    ],
)
def test_staff_start_a_revocation_and_get_202(
    staff: Any, body: dict[str, Any], expect: dict[str, Any]
) -> None:
    Group.objects.create(name="incident")
    client, token = csrf_client(staff)

    response = post_json(client, "/api/revocations", {**body, "reason": "incident 7"}, token)

    assert response.status_code == 202
    data = response.json()
    assert set(data) >= REVOCATION_FIELDS
    assert data["state"] == "pending" and data["reason"] == "incident 7"
    request = RevocationRequest.objects.get(pk=data["id"])
    for field, value in expect.items():
        assert getattr(request, field) == value
    assert request.requested_by == staff


def test_staff_revoke_users_by_id(staff: Any, make_user: Any) -> None:
    users = [make_user(), make_user()]
    client, token = csrf_client(staff)
    response = post_json(client, "/api/revocations", {"user_ids": [u.pk for u in users]}, token)
    assert response.status_code == 202
    request = RevocationRequest.objects.get(pk=response.json()["id"])
    assert request.user_ids == sorted(u.pk for u in users)
    assert response.json()["users_total"] == 2


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "exactly one target"),
        ({"all": False}, "exactly one target"),
        ({"group": "incident", "all": True}, "exactly one target"),
        ({"user_ids": [2**40]}, "unknown user"),
        ({"user_ids": []}, "user_ids"),
        ({"user_ids": "abc"}, "user_ids"),
        ({"group": "no-such-group"}, "unknown group"),
        ({"scope": "no-such-scope", "value": 1}, "unknown scope"),
        ({"scope": "org"}, "scope and value"),
        ({"value": 3}, "scope and value go together"),
        ({"everyone": True}, "everyone"),
        ({"all": True, "reason": "x" * 300}, "reason"),
    ],
)
def test_bad_revocation_input_is_422_with_a_message_and_creates_nothing(
    staff: Any, body: Any, detail: str
) -> None:
    Group.objects.create(name="incident")
    client, token = csrf_client(staff)

    response = post_json(client, "/api/revocations", body, token)

    assert response.status_code == 422
    message = response.json()["detail"]
    assert isinstance(message, str)
    assert detail in message.lower()
    assert not RevocationRequest.objects.exists()


def test_malformed_json_is_422_and_creates_nothing(staff: Any) -> None:
    client, token = csrf_client(staff)
    response = client.post(
        "/api/revocations",
        "{not json",
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("malformed request body")
    assert not RevocationRequest.objects.exists()


def test_create_revocation_without_csrf_token_is_403_and_creates_nothing(staff: Any) -> None:
    client, _ = csrf_client(staff)
    response = post_json(client, "/api/revocations", {"all": True})
    assert response.status_code == 403
    assert not RevocationRequest.objects.exists()


def test_staff_get_a_revocation_or_404(staff: Any, make_user: Any) -> None:
    target = make_user()
    request = services.revoke_user_sessions(target, reason="lost laptop")
    client = logged_in_client(staff)

    found = client.get(f"/api/revocations/{request.pk}")
    missing = client.get(f"/api/revocations/{request.pk + 1000}")

    assert found.status_code == 200
    assert found.json()["id"] == request.pk
    assert found.json()["target"] == f"users {target.pk}"
    assert found.json()["reason"] == "lost laptop"
    assert missing.status_code == 404
    assert "no revocation request" in missing.json()["detail"]


def test_staff_list_revocations_newest_first_with_paging(staff: Any, make_user: Any) -> None:
    made = [services.revoke_user_sessions(make_user()) for _ in range(3)]
    client = logged_in_client(staff)

    first = client.get("/api/revocations?limit=2").json()
    rest = client.get("/api/revocations?limit=2&offset=2").json()

    assert first["count"] == rest["count"] == 3
    assert [r["id"] for r in first["items"] + rest["items"]] == [r.pk for r in reversed(made)]
    assert client.get("/api/revocations?limit=0").status_code == 422


def test_scope_value_reaches_the_resolver(staff: Any, make_user: Any) -> None:
    org = Org.objects.create(name="Acme")
    Membership.objects.create(org=org, user=make_user())
    client, token = csrf_client(staff)
    response = post_json(client, "/api/revocations", {"scope": "org", "value": org.pk}, token)
    assert response.status_code == 202
    assert response.json()["target"] == f"org={org.pk}"


def test_starting_revocations_is_rate_limited(staff: Any, settings: Any) -> None:
    settings.REVOCATION_API_WRITE_RATE = "2/min"
    # The counter lives in the shared cache; start from zero whatever ran before.
    cache.delete(f"revocation:throttle:write:{staff.pk}")
    client, token = csrf_client(staff)

    statuses = [
        post_json(client, "/api/revocations", {"all": True}, token).status_code for _ in range(2)
    ]
    limited = post_json(client, "/api/revocations", {"all": True}, token)

    assert statuses == [202, 202]
    assert limited.status_code == 429
    assert limited.json() == {"detail": "Too many requests."}
    assert int(limited["Retry-After"]) >= 1
    assert RevocationRequest.objects.count() == 2


def test_reading_revocations_is_rate_limited(staff: Any, settings: Any) -> None:
    settings.REVOCATION_API_READ_RATE = "3/min"
    cache.delete(f"revocation:throttle:read:{staff.pk}")
    client = logged_in_client(staff)
    statuses = [client.get("/api/revocations").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


# --- Bad input is a clear 4xx {"detail"}, never a 500, and creates nothing ----------

OPERATIONS = [
    ("get", "/api/sessions/"),
    ("post", "/api/sessions/revoke-others"),
    ("delete", f"/api/sessions/{MAX_ID}"),
    ("post", "/api/revocations"),
    ("get", "/api/revocations"),
    ("get", f"/api/revocations/{MAX_ID}"),
]
WAYS = ("logged in with token", "logged in, no token", "anonymous with token", "anonymous")


def clients(user: Any) -> dict[str, tuple[Client, dict[str, str]]]:
    """Return a client and headers for each way of coming: logged in or not, token or not."""
    logged_in, token = csrf_client(user)
    anonymous = Client(enforce_csrf_checks=True)
    anonymous.get("/accounts/login/")
    return {
        WAYS[0]: (logged_in, {"X-CSRFToken": token}),
        WAYS[1]: (logged_in, {}),
        WAYS[2]: (anonymous, {"X-CSRFToken": anonymous.cookies["csrftoken"].value}),
        WAYS[3]: (Client(enforce_csrf_checks=True), {}),
    }


def assert_json_error(response: Any, status: int, detail: str = "", way: str = "") -> None:
    """Check a `{"detail": ...}` error answer with that status (and words)."""
    assert response.status_code == status, (way, response.content[:300])
    assert response["Content-Type"] == "application/json; charset=utf-8", way
    assert detail in response.json()["detail"], way


@pytest.mark.parametrize(("method", "url"), OPERATIONS)
@pytest.mark.parametrize(
    "content_type", ["application/json", "application/x-www-form-urlencoded", "text/plain"]
)
def test_a_body_over_the_upload_limit_is_413_on_every_operation(
    staff: Any, settings: Any, method: str, url: str, content_type: str
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    for way, (client, headers) in clients(staff).items():
        body = json.dumps({"all": True, "reason": "x" * 1000})

        response = client.generic(
            method.upper(), url, body, content_type=content_type, headers=headers
        )

        assert_json_error(response, 413, "request body too large: the limit is 1000 bytes", way)
    assert not RevocationRequest.objects.exists()


def test_a_form_with_too_many_fields_is_413(staff: Any) -> None:
    # Small enough to be read, so Django's field count (in the CSRF check) refuses it.
    client, token = csrf_client(staff)
    body = "&".join(f"f{i}=1" for i in range(2000))
    response = client.post(
        "/api/sessions/revoke-others",
        body,
        content_type="application/x-www-form-urlencoded",
        headers={"X-CSRFToken": token},
    )
    assert_json_error(response, 413, "DATA_UPLOAD_MAX_NUMBER_FIELDS")
    assert not RevocationRequest.objects.exists()


@pytest.mark.parametrize(
    ("method", "url", "statuses"),
    [
        # The CSRF check parses a POST body for a form token: malformed, it is 422
        # (once a CSRF cookie lets the check get that far).
        ("post", "/api/sessions/revoke-others", (422, 422, 422, 403)),
        ("post", "/api/revocations", (415, 415, 415, 415)),  # JSON only, checked first
        ("delete", f"/api/sessions/{MAX_ID}", (404, 403, 401, 403)),  # never parsed
    ],
)
@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary="])
def test_multipart_without_a_boundary_is_a_json_4xx_on_every_write(
    staff: Any, method: str, url: str, statuses: tuple[int, ...], content_type: str
) -> None:
    for (way, (client, headers)), status in zip(clients(staff).items(), statuses, strict=True):
        response = client.generic(
            method.upper(), url, b"--x\r\n\r\n", content_type=content_type, headers=headers
        )
        assert_json_error(response, status, way=way)
    assert not RevocationRequest.objects.exists()


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
    ],
)
def test_a_revocation_sent_as_anything_but_json_is_415(staff: Any, content_type: str) -> None:
    client, token = csrf_client(staff)
    response = client.generic(
        "POST",
        "/api/revocations",
        b'{"all": true}',
        content_type=content_type,
        headers={"X-CSRFToken": token},
    )
    assert_json_error(response, 415, "application/json")
    assert not RevocationRequest.objects.exists()


def test_a_body_that_is_not_utf8_is_422(staff: Any) -> None:
    client, token = csrf_client(staff)
    response = client.generic(
        "POST",
        "/api/revocations",
        b'{"group": "\xff\xfe"}',
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert_json_error(response, 422, "malformed request body")
    assert not RevocationRequest.objects.exists()


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"user_ids": [True]}, "body.user_ids.0: Input should be a valid integer"),
        ({"user_ids": ["1"]}, "body.user_ids.0: Input should be a valid integer"),
        ({"user_ids": [1.5]}, "body.user_ids.0: Input should be a valid integer"),
        ({"user_ids": [2**63]}, "body.user_ids.0: Input should be less than or equal"),
        ({"all": "yes"}, "body.all: Input should be a valid boolean"),
        ({"all": "true"}, "body.all: Input should be a valid boolean"),
        ({"all": 1}, "body.all: Input should be a valid boolean"),
        ({"scope": "org", "value": True}, "body.value.integer: Input should be a valid integer"),
        ({"scope": "org", "value": 1.5}, "body.value.integer: Input should be a valid integer"),
        ({"scope": "org", "value": 2**70}, "body.value.integer: Input should be less than"),
        ({"scope": "org", "value": [1]}, "body.value.integer: Input should be a valid integer"),
        ({"group": 5}, "body.group: Input should be a valid string"),
        ({"all": True, "reason": 5}, "body.reason: Input should be a valid string"),
    ],
)
def test_values_of_the_wrong_json_type_are_422_not_coerced(
    staff: Any, body: dict[str, Any], detail: str
) -> None:
    client, token = csrf_client(staff)
    response = post_json(client, "/api/revocations", body, token)
    assert_json_error(response, 422, detail)
    assert not RevocationRequest.objects.exists()


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"group": "incident\x00"}, "body.group: Value error, must not contain NUL"),
        ({"all": True, "reason": "a\x00b"}, "body.reason: Value error, must not contain NUL"),
        ({"scope": "org\x00", "value": 1}, "body.scope: Value error, must not contain NUL"),
        ({"scope": "org", "value": "4\x002"}, "body.value.string: Value error, must not contain"),
        ({"group": " \t"}, "body.group: Value error, must not be blank"),
        ({"scope": " ", "value": 1}, "body.scope: Value error, must not be blank"),
        ({"scope": "org", "value": " "}, "body.value.string: Value error, must not be blank"),
    ],
)
def test_nul_and_blank_text_are_422_before_the_database_sees_them(
    staff: Any, body: dict[str, Any], detail: str
) -> None:
    Group.objects.create(name="incident")
    client, token = csrf_client(staff)
    response = post_json(client, "/api/revocations", body, token)
    assert_json_error(response, 422, detail)
    assert not RevocationRequest.objects.exists()


def test_any_request_the_service_refuses_is_422(staff: Any, monkeypatch: Any) -> None:
    # Not only a bad target: the service's base class (a reason it cannot store, say).
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise InvalidRequest("reason is 300 characters long; the most is 255")

    monkeypatch.setattr(services, "revoke", refuse)
    client, token = csrf_client(staff)
    response = post_json(client, "/api/revocations", {"all": True}, token)
    assert_json_error(response, 422, "reason is 300 characters long")


def test_a_json_integer_written_with_a_fraction_part_is_an_id(staff: Any, make_user: Any) -> None:
    # JSON Schema (and so the OpenAPI document) calls 7.0 an integer; true is not one.
    target = make_user()
    client, token = csrf_client(staff)
    response = post_json(client, "/api/revocations", {"user_ids": [float(target.pk)]}, token)
    assert response.status_code == 202
    assert RevocationRequest.objects.get().user_ids == [target.pk]


def test_all_false_beside_another_target_is_that_target(staff: Any) -> None:
    Group.objects.create(name="incident")
    client, token = csrf_client(staff)
    response = post_json(client, "/api/revocations", {"group": "incident", "all": False}, token)
    assert response.status_code == 202
    assert RevocationRequest.objects.get().target == "group"


@pytest.mark.parametrize("session_id", ["0", "-1", str(2**63), str(10**30), "1.5", "abc"])
def test_session_ids_out_of_range_are_422(make_user: Any, session_id: str) -> None:
    client, token = csrf_client(make_user())
    response = client.delete(f"/api/sessions/{session_id}", headers={"X-CSRFToken": token})
    assert_json_error(response, 422, "path.session_id")


@pytest.mark.parametrize("revocation_id", ["0", str(2**63), str(10**30)])
def test_revocation_ids_out_of_range_are_422(staff: Any, revocation_id: str) -> None:
    response = logged_in_client(staff).get(f"/api/revocations/{revocation_id}")
    assert_json_error(response, 422, "path.revocation_id")


@pytest.mark.parametrize(
    "query", ["limit=abc", f"limit={10**30}", "offset=-1", f"offset={10**30}", "limit=%00"]
)
def test_paging_out_of_range_is_422(staff: Any, query: str) -> None:
    response = logged_in_client(staff).get(f"/api/revocations?{query}")
    assert_json_error(response, 422, "query.")


def test_every_answer_is_private_and_never_stored(staff: Any, settings: Any) -> None:
    # By itself, as when another project mounts the API without this service's
    # middleware (which marks every response that read the session private).
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.startswith("config.")]
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    existing = services.revoke_sessions(everyone=True, requested_by=staff)
    client, token = csrf_client(staff)
    other = row_of(logged_in_client(staff))
    answers = [
        client.get("/api/sessions/"),
        client.get("/api/revocations"),
        client.get(f"/api/revocations/{existing.pk}"),
        client.get("/api/revocations/0"),  # 422
        post_json(client, "/api/revocations", {"all": True}, token),
        post_json(client, "/api/sessions/revoke-others", {}, token),
        client.delete(f"/api/sessions/{other.pk}", headers={"X-CSRFToken": token}),
        Client().get("/api/sessions/"),  # 401
        Client().generic("GET", "/api/sessions/", "x" * 1001),  # 413, session never read
    ]
    for response in answers:
        cache_control = {part.strip() for part in response["Cache-Control"].split(",")}
        assert {"private", "no-store"} <= cache_control, (response.status_code, cache_control)


def test_openapi_document_states_every_error_and_the_csrf_pair(client: Client) -> None:
    doc = client.get("/api/openapi.json").json()

    for path, item in doc["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert {"401", "403", "413", "422"} <= set(responses), (method, path)
            csrf = {"CsrfCookie", "CsrfHeader"} <= set(operation["security"][0])
            assert csrf == (method in ("post", "delete")), (method, path)
    assert "415" in doc["paths"]["/api/revocations"]["post"]["responses"]
    schemes = doc["components"]["securitySchemes"]
    assert schemes["CsrfCookie"] == {"type": "apiKey", "in": "cookie", "name": "csrftoken"}
    assert schemes["CsrfHeader"]["name"] == "X-CSRFToken"
    body = doc["components"]["schemas"]["RevocationIn"]
    assert len(body["oneOf"]) == 4  # exactly one target
    assert body["properties"]["all"]["type"] == "boolean"
    assert "\\x00" in body["properties"]["reason"]["pattern"]
