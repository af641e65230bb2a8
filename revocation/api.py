"""The JSON API (django-ninja): your sessions, and revocations for those with the permission.

Authentication is the Django session cookie; unsafe methods also need the CSRF
token (`X-CSRFToken` header + `csrftoken` cookie). Errors are `{"detail": "..."}`,
never an HTML page: 401/403 (auth), 404, 413 (body too large), 415 (not JSON),
422 (invalid input) and 429 (rate limit). No answer may be kept by a cache.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.http.response import HttpResponseBase
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext
from ninja import NinjaAPI, P, PathEx, Query, Router
from ninja.decorators import decorate_view
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, ValidationError
from ninja.responses import Status
from ninja.security import SessionAuth

from . import linking, permissions, selectors, services
from .app_settings import app_settings
from .exceptions import InvalidRequest, RequestNotFound
from .schemas import (
    MAX_ID,
    Error,
    Page,
    RevocationIn,
    RevocationList,
    RevocationOut,
    SessionList,
)
from .throttling import UserRateThrottle

View = Callable[..., HttpResponseBase]
# Targets named as the JSON body names them, in error messages.
JSON_SPELLING = services.Spelling(
    users="user_ids",
    group="group",
    scope="scope (with value)",
    everyone="all",
    flag="all",
    scope_example='{"scope": "org", "value": 42}',
)


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
            raise AuthorizationError(
                403,
                gettext("this needs the %(permission)s permission")
                % {"permission": self.permission},
            )
        return user


# Django's CSRF check, stated in the document as two more credentials of unsafe methods.
UNSAFE_METHODS = ("post", "put", "patch", "delete")


def _csrf_schemes() -> dict[str, dict[str, str]]:
    """Return the OpenAPI security schemes of the CSRF cookie and header."""
    header = settings.CSRF_HEADER_NAME.removeprefix("HTTP_").replace("_", "-")
    return {
        "CsrfCookie": {"type": "apiKey", "in": "cookie", "name": settings.CSRF_COOKIE_NAME},
        "CsrfHeader": {
            "type": "apiKey",
            "in": "header",
            "name": "X-CSRFToken" if header == "X-CSRFTOKEN" else header,
            "description": "the value of the CSRF cookie",
        },
    }


class RevocationAPI(NinjaAPI):
    """NinjaAPI whose document also says that unsafe methods need the CSRF cookie and header."""

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> Any:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        schemes = _csrf_schemes()
        schema["components"].setdefault("securitySchemes", {}).update(schemes)
        for item in schema["paths"].values():
            for method, operation in item.items():
                if method in UNSAFE_METHODS and "security" in operation:
                    # One requirement, all of it needed: the session cookie AND the CSRF pair.
                    operation["security"] = [
                        {**required, **dict.fromkeys(schemes, [])}
                        for required in operation["security"]
                    ]
        return schema


api = RevocationAPI(
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
_ERRORS: dict[int, Any] = {401: Error, 403: Error, 413: Error, 422: Error}
_write_throttle = UserRateThrottle("write", lambda: app_settings.API_WRITE_RATE)
_read_throttle = UserRateThrottle("read", lambda: app_settings.API_READ_RATE)


def _declared_length(request: HttpRequest) -> int:
    """Return the body length the client announced (0 if none or unreadable, as Django does)."""
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


def _guarded(run: View) -> View:
    """Wrap every operation: refuse an oversized body up front, and keep answers out of caches.

    Django checks DATA_UPLOAD_MAX_MEMORY_SIZE only when something reads the body, and
    ninja's CSRF check or body parser would then fail with an HTML 400 (a 500 in DEBUG).
    Checking the announced length first gives every operation the same 413, body or not.
    """

    @functools.wraps(run)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and _declared_length(request) > limit:
            response: HttpResponseBase = _too_large(request, RequestDataTooBig())
        else:
            response = run(request, *args, **kwargs)
        # Sessions and revocations are per-user data: no shared or browser cache keeps them.
        add_never_cache_headers(response)
        return response

    return guarded


api.add_decorator(_guarded, mode="view")


def _json_body(run: View) -> View:
    """Wrap an operation that reads a JSON body: any other media type is 415, not parsed."""

    @functools.wraps(run)
    def json_only(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        media_type = request.content_type or ""
        is_json = media_type == "application/json" or media_type.endswith("+json")
        if _declared_length(request) and not is_json:
            return api.create_response(
                request,
                {"detail": _not_json(media_type)},
                status=415,
            )
        return run(request, *args, **kwargs)

    return json_only


@api.exception_handler(RequestDataTooBig)
def _too_large(request: HttpRequest, exc: Exception) -> HttpResponse:
    """Answer 413 when the body is larger than Django may read."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    detail = gettext("request body too large: the limit is %(limit)s bytes") % {"limit": limit}
    return api.create_response(request, {"detail": detail}, status=413)


@api.exception_handler(TooManyFieldsSent)
@api.exception_handler(TooManyFilesSent)
def _too_many_fields(request: HttpRequest, exc: Exception) -> HttpResponse:
    """Answer 413 when a form body has more fields than Django may parse (in the CSRF check)."""
    detail = gettext("request body too large: %(error)s") % {"error": exc}
    return api.create_response(request, {"detail": detail}, status=413)


@api.exception_handler(MultiPartParserError)
def _malformed_multipart(request: HttpRequest, exc: MultiPartParserError) -> HttpResponse:
    """Answer 422 for a multipart body Django cannot parse (ninja's CSRF check reads it)."""
    return api.create_response(request, {"detail": _malformed(exc)}, status=422)


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    """Answer 422 with one readable sentence instead of pydantic's error list."""
    parts = []
    for error in exc.errors:
        # ("body", "body", "user_ids", 0): the second "body" is our parameter's name.
        loc = [str(p) for p in error.get("loc", ())]
        where = ".".join(p for i, p in enumerate(loc) if i == 0 or p != loc[i - 1])
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", ""))
    detail = "; ".join(parts) or gettext("invalid input")
    return api.create_response(request, {"detail": detail}, status=422)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    """Answer `{"detail": ...}`; a body that is not JSON is invalid input too (422)."""
    if exc.status_code == 400:
        # django-ninja's only 400: "Cannot parse request body".
        return api.create_response(request, {"detail": _malformed(exc)}, status=422)
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)


@api.exception_handler(AuthenticationError)
def _not_logged_in(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api.create_response(request, {"detail": gettext("not logged in")}, status=401)


def _not_json(media_type: str) -> str:
    """Return the 415 message for a body of `media_type`."""
    if not media_type:
        return gettext("send the body as application/json, not untyped")
    return gettext("send the body as application/json, not %(type)s") % {"type": media_type}


def _malformed(exc: Exception) -> str:
    """Return the 422 message for a body that cannot be parsed."""
    return gettext("malformed request body: %(error)s") % {"error": exc}


# --- Your sessions -----------------------------------------------------------------

sessions = Router(tags=["sessions"])


@sessions.get("/", response={200: SessionList, **_ERRORS}, summary="List your sessions")
def list_sessions(request: HttpRequest) -> dict[str, Any]:
    """Your live sessions, newest first; `current` marks the one making this request."""
    items = selectors.session_list(
        request.user,
        current_key=linking.link_key(request.session),
        current_expires_at=linking.expires_at(request),
    )
    return {"items": items, "count": len(items)}


# Before /{session_id}, which would otherwise match "revoke-others" too.
@sessions.post(
    "/revoke-others",
    response={202: RevocationOut, 429: Error, **_ERRORS},
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
    response={204: None, 404: Error, **_ERRORS},
    summary="Log one session out",
)
def delete_session(
    request: HttpRequest, session_id: PathEx[int, P(ge=1, le=MAX_ID)]
) -> Status[None]:
    """End one of your sessions now. Ending the current one logs you out.

    Another user's session id answers 404, exactly like a missing one.
    """
    ended = services.end_session(
        request.user, session_id, current_key=linking.link_key(request.session)
    )
    if ended is services.Ended.MISSING:
        raise HttpError(404, gettext("no such session"))
    if ended is services.Ended.CURRENT:
        logout(request)
    return Status(204, None)


# --- Revocations (model permissions) --------------------------------------------------

revocations = Router(tags=["revocations"])
_may_start = PermissionAuth(permissions.START)
_may_view = PermissionAuth(permissions.VIEW)


@revocations.post(
    "",
    response={202: RevocationOut, 415: Error, 429: Error, **_ERRORS},
    auth=_may_start,
    throttle=[_write_throttle],
    summary="Start a revocation",
)
@decorate_view(_json_body)
def create_revocation(request: HttpRequest, body: RevocationIn) -> Status[dict[str, Any]]:
    """Log out users by id, a group, a scope or everyone; returns at once (202).

    Give exactly one of `{"user_ids": [...]}`, `{"group": "..."}`,
    `{"scope": "org", "value": ...}` or `{"all": true}`, plus an optional
    `"reason"`. Ids are JSON integers and `all` a JSON boolean (no `"1"`, no `"yes"`).
    Unknown users, groups or scopes, blank names and NUL characters answer 422 and
    create nothing.
    """
    named_scope = body.scope is not None or body.value is not None
    try:
        target = services.parse_target(
            user_ids=body.user_ids,
            group=body.group,
            scope=(body.scope, body.value) if named_scope else None,
            everyone=body.all,
            spelling=JSON_SPELLING,
        )
        revocation = services.revoke(target, reason=body.reason, requested_by=request.user)
    except InvalidRequest as exc:
        raise HttpError(422, str(exc)) from exc
    return Status(202, selectors.request_summary(revocation))


@revocations.get(
    "",
    response={200: RevocationList, 429: Error, **_ERRORS},
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
    response={200: RevocationOut, 404: Error, 429: Error, **_ERRORS},
    auth=_may_view,
    throttle=[_read_throttle],
    summary="Get a revocation",
)
def get_revocation(
    request: HttpRequest, revocation_id: PathEx[int, P(ge=1, le=MAX_ID)]
) -> dict[str, Any]:
    """State and progress of one revocation request."""
    try:
        return selectors.request_summary(selectors.get_request(revocation_id))
    except RequestNotFound as exc:
        raise HttpError(404, str(exc)) from exc


api.add_router("/sessions", sessions)
api.add_router("/revocations", revocations)
