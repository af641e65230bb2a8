"""HTML views and /healthz: thin, reading through selectors and writing through services."""

from __future__ import annotations

import json
import logging
from typing import Any

from celery import current_app
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from . import linking, permissions, selectors, services
from .app_settings import app_settings
from .exceptions import InvalidRequest
from .forms import RevocationForm
from .models import RevocationRequest

logger = logging.getLogger("revocation")

# /healthz answers within a few seconds even when a server is black-holed.
HEALTH_TIMEOUT = 2


@never_cache
@login_required
@require_GET
def sessions_page(request: HttpRequest) -> HttpResponse:
    """Show the user's sessions, the current one marked."""
    rows = selectors.session_list(
        request.user,
        current_key=linking.link_key(request.session),
        current_expires_at=linking.expires_at(request),
    )
    others = sum(1 for row in rows if not row["current"])
    limits = {
        "idle_timeout": app_settings.IDLE_TIMEOUT,
        "max_lifetime": app_settings.MAX_LIFETIME,
    }
    return render(request, "revocation/sessions.html", {"rows": rows, "others": others, **limits})


@never_cache
@login_required
@require_POST
def end_session(request: HttpRequest, session_id: int) -> HttpResponse:
    """Log one of the user's sessions out now (another user's id is a 404)."""
    ended = services.end_session(
        request.user, session_id, current_key=linking.link_key(request.session)
    )
    if ended is services.Ended.MISSING:
        raise Http404(gettext("no such session"))
    if ended is services.Ended.CURRENT:
        logout(request)
        return redirect("login")
    messages.success(request, gettext("That session is logged out."))
    return redirect("revocation:sessions")


@never_cache
@login_required
@require_POST
def end_other_sessions(request: HttpRequest) -> HttpResponse:
    """Log out every session of the user except this one (through the workers)."""
    services.revoke_user_sessions(
        request.user,
        keep_session=request.session,
        reason="logged out other sessions",
        requested_by=request.user,
    )
    messages.success(
        request, gettext("Your other sessions are being logged out; this takes a few seconds.")
    )
    return redirect("revocation:sessions")


@never_cache
@login_required
def revocations_page(request: HttpRequest) -> HttpResponse:
    """Dashboard: recent revocations (view permission), and a form to start one (add)."""
    may_start = permissions.can_start(request.user)
    if request.method == "POST" and not may_start:
        raise PermissionDenied(
            gettext("starting a revocation needs the %(permission)s permission")
            % {"permission": permissions.START}
        )
    if not (may_start or permissions.can_view(request.user)):
        raise PermissionDenied(
            gettext("the dashboard needs the %(permission)s permission")
            % {"permission": permissions.VIEW}
        )
    form = RevocationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if form.needs_confirmation():
            return render(request, "revocation/confirm_everyone.html", {"form": form})
        try:
            revocation = services.revoke(
                form.parsed,
                reason=form.cleaned_data["reason"],
                requested_by=request.user,
            )
        except InvalidRequest as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                gettext("Revocation #%(id)s started: %(target)s.")
                % {"id": revocation.pk, "target": form.parsed.describe()},
            )
            return redirect("revocation:revocations")
    page = None
    if permissions.can_view(request.user):
        page = Paginator(selectors.recent_requests(), 25).get_page(request.GET.get("page"))
    context = {"form": form if may_start else None, "page": page, "states": _state_labels()}
    return render(request, "revocation/revocations.html", context)


def _state_labels() -> str:
    """Return each state in words, as JSON: the dashboard's script shows states it polls so."""
    return json.dumps({value: str(label) for value, label in RevocationRequest.State.choices})


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Report whether the database and the broker are reachable: 200, else 503."""
    checks = {"database": _check(_ping_database), "broker": _check(_ping_broker)}
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(checks, status=200 if healthy else 503)


def _check(ping: Any) -> str:
    try:
        ping()
    except Exception as exc:
        logger.warning("healthz: %s failed: %r", ping.__name__, exc)
        return f"unavailable: {type(exc).__name__}"
    return "ok"


def _ping_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _ping_broker() -> None:
    # One attempt with short timeouts: a health check must never hang on a dead broker.
    short = {"socket_timeout": HEALTH_TIMEOUT, "socket_connect_timeout": HEALTH_TIMEOUT}
    with current_app.connection_for_write(
        connect_timeout=HEALTH_TIMEOUT, transport_options=short
    ) as conn:
        conn.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, timeout=HEALTH_TIMEOUT
        )
