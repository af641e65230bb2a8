"""Test-only views that drive each session-key change through the real middleware stack."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.contrib import auth
from django.contrib.auth import get_user_model, login, logout, update_session_auth_hash
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path


def login_as(request: HttpRequest, user_id: int) -> HttpResponse:
    """Log in as `user_id` (over whoever is logged in)."""
    login(request, get_user_model().objects.get(pk=user_id))
    return HttpResponse("ok")


async def alogin_as(request: HttpRequest, user_id: int) -> HttpResponse:
    """Log in as `user_id` through the async API."""
    user = await get_user_model().objects.aget(pk=user_id)
    await auth.alogin(request, user)  # Django 5.0+
    return HttpResponse("ok")


def rehash(request: HttpRequest) -> HttpResponse:
    """Call update_session_auth_hash for the current user (as a password change does)."""
    update_session_auth_hash(request, request.user)  # type: ignore[arg-type]
    return HttpResponse("ok")


async def arehash(request: HttpRequest) -> HttpResponse:
    """Call aupdate_session_auth_hash for the current user."""
    # aupdate_session_auth_hash compares with request.user, which resolves synchronously.
    await sync_to_async(lambda: request.user.pk)()
    await auth.aupdate_session_auth_hash(request, request.user)  # type: ignore[arg-type]
    return HttpResponse("ok")


def whoami(request: HttpRequest) -> HttpResponse:
    """Return the user id seen by this request, and the session key."""
    return JsonResponse(
        {
            "user": request.user.pk if request.user.is_authenticated else None,
            "key": request.session.session_key,
        }
    )


def do_logout(request: HttpRequest) -> HttpResponse:
    """Log out."""
    logout(request)
    return HttpResponse("ok")


def anon_visit(request: HttpRequest) -> HttpResponse:
    """Store something in an anonymous session so it gets a key."""
    request.session["visited"] = True
    return HttpResponse("ok")


def public(request: HttpRequest) -> HttpResponse:
    """A page that never looks at the session or the user, as a cacheable page would."""
    return HttpResponse("public")


def revoke_others(request: HttpRequest) -> HttpResponse:
    """Log out the user's other sessions, keeping this one."""
    from revocation import services

    services.revoke_user_sessions(request.user, keep_session=request.session)
    return HttpResponse("ok")


urlpatterns = [
    path("t/revoke-others/", revoke_others),
    path("t/login/<int:user_id>/", login_as),
    path("t/alogin/<int:user_id>/", alogin_as),
    path("t/rehash/", rehash),
    path("t/arehash/", arehash),
    path("t/whoami/", whoami),
    path("t/logout/", do_logout),
    path("t/anon/", anon_visit),
    path("t/public/", public),
    path("", include("config.urls")),
]
