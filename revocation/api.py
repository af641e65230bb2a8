"""The JSON API (django-ninja): your sessions, and revocations for those with the permission.

Authentication is the Django session cookie; unsafe methods also need the CSRF
token (`X-CSRFToken` header + `csrftoken` cookie). Errors are `{"detail": "..."}`.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Query, Router
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, ValidationError
from ninja.responses import Status
from ninja.security import SessionAuth

from . import permissions, selectors, services
from .app_settings import app_settings
from .exceptions import InvalidTarget, RequestNotFound
from .schemas import (
    Error,
    Page,
    RevocationIn,
    RevocationList,
    RevocationOut,
    SessionList,
)
from .throttling import UserRateThrottle


class UserAuth(SessionAuth):
    """A logged-in user (session cookie, CSRF-checked on unsafe methods); else 401."""


class PermissionAuth(SessionAuth):
    """A logged-in user holding `permission`: 401 when not logged in, 403 without it."""

    def __init__(self, permission: str) -> None:
        super().__init__()
        self.permission = permission

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = super().authenticate(request, key)
        if user is not None and not user.has_perm(self.permission):
            raise AuthorizationError(403, f"this needs the {self.permission} permission")
        return user


api = NinjaAPI(
    title="Session revocation API",
    version="1",
    description=(
        "Your sessions, and revocation requests: starting one needs the "
        f"{permissions.START} permission, reading them {permissions.VIEW}. "
        "Session-cookie authentication; POST and DELETE also need Django's CSRF token "
        "in the X-CSRFToken header."
    ),
    auth=UserAuth(),
    urls_namespace="revocation-api",
)

# Every operation can answer these; each is documented so clients (and schemathesis) know.
_AUTH_ERRORS: dict[int, Any] = {401: Error, 403: Error, 422: Error}
_write_throttle = UserRateThrottle("write", lambda: app_settings.API_WRITE_RATE)
_read_throttle = UserRateThrottle("read", lambda: app_settings.API_READ_RATE)


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    """Answer 422 with one readable sentence instead of pydantic's error list."""
    parts = []
    for error in exc.errors:
        # ("body", "body", "user_ids", 0): the second "body" is our parameter's name.
        loc = [str(p) for p in error.get("loc", ())]
        where = ".".join(p for i, p in enumerate(loc) if i == 0 or p != loc[i - 1])
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", ""))
    return api.create_response(request, {"detail": "; ".join(parts) or "invalid input"}, status=422)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    """Answer `{"detail": ...}`; a body that is not JSON is invalid input too (422)."""
    if exc.status_code == 400:
        # django-ninja's only 400: "Cannot parse request body".
        return api.create_response(
            request, {"detail": f"malformed request body: {exc}"}, status=422
        )
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)


@api.exception_handler(AuthenticationError)
def _not_logged_in(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api.create_response(request, {"detail": "not logged in"}, status=401)


# --- Your sessions -----------------------------------------------------------------

sessions = Router(tags=["sessions"])


@sessions.get("/", response={200: SessionList, **_AUTH_ERRORS}, summary="List your sessions")
def list_sessions(request: HttpRequest) -> dict[str, Any]:
    """Your live sessions, newest first; `current` marks the one making this request."""
    items = selectors.session_list(request.user, current_key=request.session.session_key)
    return {"items": items, "count": len(items)}


# Before /{session_id}, which would otherwise match "revoke-others" too.
@sessions.post(
    "/revoke-others",
    response={202: RevocationOut, 429: Error, **_AUTH_ERRORS},
    throttle=[_write_throttle],
    summary="Log out your other sessions",
)
def revoke_other_sessions(request: HttpRequest) -> Status[dict[str, Any]]:
    """Log out every session of yours except this one (carried out by the workers)."""
    revocation = services.revoke_user_sessions(
        request.user,
        keep_session=request.session,
        reason="logged out other sessions",
        requested_by=request.user,
    )
    return Status(202, selectors.request_summary(revocation))


@sessions.delete(
    "/{session_id}",
    response={204: None, 404: Error, **_AUTH_ERRORS},
    summary="Log one session out",
)
def delete_session(request: HttpRequest, session_id: int) -> Status[None]:
    """End one of your sessions now. Ending the current one logs you out.

    Another user's session id answers 404, exactly like a missing one.
    """
    row = selectors.user_session(request.user, session_id)
    if row is None:
        raise HttpError(404, "no such session")
    if row.session_key == request.session.session_key:
        logout(request)
    elif not services.end_session(user=request.user, session_id=row.pk):
        raise HttpError(404, "no such session")
    return Status(204, None)


# --- Revocations (model permissions) --------------------------------------------------

revocations = Router(tags=["revocations"])
_may_start = PermissionAuth(permissions.START)
_may_view = PermissionAuth(permissions.VIEW)


@revocations.post(
    "",
    response={202: RevocationOut, 429: Error, **_AUTH_ERRORS},
    auth=_may_start,
    throttle=[_write_throttle],
    summary="Start a revocation",
)
def create_revocation(request: HttpRequest, body: RevocationIn) -> Status[dict[str, Any]]:
    """Log out users by id, a group, a scope or everyone; returns at once (202).

    Give exactly one of `{"user_ids": [...]}`, `{"group": "..."}`,
    `{"scope": "org", "value": ...}` or `{"all": true}`, plus an optional
    `"reason"`. Unknown users, groups or scopes answer 422 and create nothing.
    """
    given = [body.user_ids is not None, body.group is not None, body.scope is not None, body.all]
    if sum(given) != 1:
        raise HttpError(422, "give exactly one target: user_ids, group, scope (with value) or all")
    if (body.scope is None) != (body.value is None):
        raise HttpError(422, "scope and value go together, e.g. {'scope': 'org', 'value': 42}")
    target: dict[str, Any]
    if body.user_ids is not None:
        target = {"user_ids": body.user_ids}
    elif body.group is not None:
        target = {"group": body.group}
    elif body.scope is not None:
        target = {"scope": (body.scope, body.value)}
    else:
        target = {"everyone": True}
    try:
        revocation = services.revoke_sessions(
            **target, reason=body.reason, requested_by=request.user
        )
    except InvalidTarget as exc:
        raise HttpError(422, str(exc)) from exc
    return Status(202, selectors.request_summary(revocation))


@revocations.get(
    "",
    response={200: RevocationList, 429: Error, **_AUTH_ERRORS},
    auth=_may_view,
    throttle=[_read_throttle],
    summary="List revocations",
)
def list_revocations(request: HttpRequest, page: Query[Page]) -> dict[str, Any]:
    """Revocation requests, newest first (`limit`/`offset` paging)."""
    requests = selectors.recent_requests()
    window = requests[page.offset : page.offset + page.limit]
    return {
        "items": [selectors.request_summary(r) for r in window],
        "count": requests.count(),
    }


@revocations.get(
    "/{revocation_id}",
    response={200: RevocationOut, 404: Error, 429: Error, **_AUTH_ERRORS},
    auth=_may_view,
    throttle=[_read_throttle],
    summary="Get a revocation",
)
def get_revocation(request: HttpRequest, revocation_id: int) -> dict[str, Any]:
    """State and progress of one revocation request."""
    try:
        return selectors.request_summary(selectors.get_request(revocation_id))
    except RequestNotFound as exc:
        raise HttpError(404, str(exc)) from exc


api.add_router("/sessions", sessions)
api.add_router("/revocations", revocations)
