"""Reads: which sessions belong to whom, and how revocations are going."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import router
from django.db.models import Count, Q, QuerySet
from django.utils import translation
from django.utils.translation import gettext

from . import devices, engines, lifetimes, places, targets
from .exceptions import RequestNotFound
from .models import RevocationRequest, UserSession


def sessions_for_user(user: Any) -> QuerySet[UserSession]:
    """Return the live sessions of `user`, newest first."""
    mappings = UserSession.objects.filter(user_id=user.pk).order_by("-created_at", "-pk")
    return engines.current().live(mappings)


def get_request(request_id: Any) -> RevocationRequest:
    """Return the revocation request `request_id`, or raise RequestNotFound."""
    try:
        return RevocationRequest.objects.get(pk=int(request_id))
    except (ValueError, TypeError, RevocationRequest.DoesNotExist) as exc:
        raise RequestNotFound(gettext("no revocation request with id %r") % (request_id,)) from exc


def describe_target(revocation: RevocationRequest) -> str:
    """Return who `revocation` targets, for people."""
    return targets.describe(revocation)


def request_summary(revocation: RevocationRequest) -> dict[str, Any]:
    """Return the JSON-safe status of a request (the `--json` and API shape).

    Data, in no reader's language: scripts compare it ("target": "group staff").
    """
    with translation.override(None):
        target = describe_target(revocation)
    return {
        "id": revocation.pk,
        "state": revocation.state,
        "target": target,
        "reason": revocation.reason,
        "users_total": revocation.users_total,
        "users_done": revocation.users_done,
        "sessions_revoked": revocation.sessions_revoked,
        "created_at": revocation.created_at.isoformat(),
        "started_at": revocation.started_at.isoformat() if revocation.started_at else None,
        "finished_at": revocation.finished_at.isoformat() if revocation.finished_at else None,
        "error": revocation.error,
    }


def session_list(
    user: Any, *, current_key: str | None, current_expires_at: datetime | None = None
) -> list[dict[str, Any]]:
    """Return `user`'s live sessions as API/page items (no session keys), the current one marked.

    `current_expires_at` is the current session's end (`linking.expires_at`); another
    session's is worked out from its mapping row, see `_expires_at`.
    """
    # Values, not model instances: 11.5 instead of 16 us of Python a row (bench/lookup.py data).
    rows = sessions_for_user(user).values(
        "pk",
        "session_key",
        "ip",
        "user_agent",
        "device",
        "country",
        "city",
        "created_at",
        "last_seen_at",
    )
    items: list[dict[str, Any]] = [
        {
            "id": row["pk"],
            "current": bool(current_key) and row["session_key"] == current_key,
            "ip": row["ip"],
            "user_agent": row["user_agent"],
            # Worked out at sign-in; older rows, from their stored user agent.
            "device": devices.label(row["device"], row["user_agent"]),
            "country": row["country"],
            "city": row["city"],
            "place": str(places.Place(row["country"], row["city"])),
            "created_at": row["created_at"],
            "last_seen_at": row["last_seen_at"],
        }
        for row in rows
    ]
    for item in items:
        item["expires_at"] = (
            current_expires_at
            if item["current"]
            else _expires_at(item["created_at"], item["last_seen_at"])
        )
    return items


def _expires_at(created_at: datetime, last_seen_at: datetime) -> datetime | None:
    """Return the latest a session ends by the lifetime limits, from its mapping row; None if off.

    An upper bound: the row's times are written just after the session's own stamps
    (sign-in, then the link; the activity stamp, then the touch), and the session's
    own expiry, which only the session store knows, may come first.
    """
    end = lifetimes.deadline(logged_in_at=created_at.timestamp(), seen_at=last_seen_at.timestamp())
    return None if end is None else lifetimes.to_datetime(end)


def user_session(user: Any, session_id: Any) -> UserSession | None:
    """Return `user`'s session `session_id`, or None (also when it belongs to someone else)."""
    try:
        return UserSession.objects.filter(pk=int(session_id), user_id=user.pk).first()
    except (TypeError, ValueError):
        return None


def linked_session(session_key: str) -> UserSession | None:
    """Return the mapping of `session_key` as just written (read from the database written to)."""
    using = router.db_for_write(UserSession)
    return UserSession.objects.using(using).filter(session_key=session_key).first()


def is_new_sign_in(session: UserSession) -> bool:
    """Return whether none of its user's other sessions came from `session`'s device and country.

    The device is the `device` column, or the user agent where a row has none (rows
    linked before devices were recorded). Only the mapping rows are remembered: a
    user with no other session is not told (every sign-in after logging out
    everywhere would be "new"), and a device whose sessions all ended is forgotten.
    One query.
    """
    same_device = Q(user_agent=session.user_agent)
    if session.device:
        same_device = Q(device=session.device) | Q(device="", user_agent=session.user_agent)
    others = UserSession.objects.using(router.db_for_write(UserSession)).filter(
        user_id=session.user_id
    )
    found = others.exclude(pk=session.pk).aggregate(
        total=Count("pk"), seen=Count("pk", filter=same_device & Q(country=session.country))
    )
    return bool(found["total"]) and not found["seen"]


def recent_requests() -> QuerySet[RevocationRequest]:
    """Return revocation requests, newest first, with who asked."""
    return RevocationRequest.objects.select_related("requested_by").order_by("-created_at", "-pk")
