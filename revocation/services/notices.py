"""The new sign-in notice: an e-mail to a user who signs in from a device or country not seen."""

from __future__ import annotations

import logging
from contextlib import nullcontext, suppress
from functools import partial
from typing import Any

from django.contrib.sites.shortcuts import get_current_site
from django.core.mail import send_mail
from django.db import connections, router, transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import translation

from .. import devices, selectors
from ..models import UserSession

logger = logging.getLogger("revocation")

SUBJECT_TEMPLATE = "revocation/email/new_sign_in_subject.txt"
BODY_TEMPLATE = "revocation/email/new_sign_in_body.txt"


def notify_new_sign_in(*, user: Any, session: UserSession, request: HttpRequest | None) -> bool:
    """E-mail `user` after commit if sign-in `session` is new to them; return whether queued.

    "New" is `selectors.is_new_sign_in()`: one query. A user without an e-mail
    address is skipped before it. Sending happens after the login's transaction
    commits (a rolled-back login sends nothing) and never raises: a failure is logged.
    """
    address = _address_of(user)
    if not address:
        return False
    using = router.db_for_write(UserSession)
    # A savepoint inside a transaction (ATOMIC_REQUESTS): a failed query must not abort
    # the login's whole transaction on PostgreSQL.
    with transaction.atomic(using=using) if connections[using].in_atomic_block else nullcontext():
        if not selectors.is_new_sign_in(session):
            return False
    context = _context(user, session, request)
    # The language of the request that signed in, not whatever is active at commit.
    send = partial(_send, address, context, translation.get_language(), user.pk)
    transaction.on_commit(send, using=using)
    return True


def _address_of(user: Any) -> str:
    """Return the user's e-mail address, or "" (custom user models may have no such field)."""
    field = getattr(user, "get_email_field_name", lambda: "email")()
    return str(getattr(user, field, "") or "")


def _context(user: Any, session: UserSession, request: HttpRequest | None) -> dict[str, Any]:
    """Return what the templates show, worked out now, while the request is at hand."""
    sessions_url = ""
    site_name = ""
    if request is not None:
        site_name = get_current_site(request).name
        # NoReverseMatch: the project does not mount revocation.urls, no page to point to.
        with suppress(NoReverseMatch):
            sessions_url = request.build_absolute_uri(reverse("revocation:sessions"))
    return {
        "username": user.get_username(),
        "device": devices.label(session.device, session.user_agent),
        "ip": session.ip or "",
        "place": ", ".join(part for part in (session.city, session.country) if part),
        "when": session.created_at,
        "site_name": site_name,
        "sessions_url": sessions_url,
    }


def _send(address: str, context: dict[str, Any], language: str | None, user_id: Any) -> None:
    """Render and send the notice in `language`, logging instead of raising."""
    try:
        with translation.override(language):
            subject = "".join(render_to_string(SUBJECT_TEMPLATE, context).splitlines()).strip()
            body = render_to_string(BODY_TEMPLATE, context)
        send_mail(subject, body, None, [address])
    except Exception:
        logger.exception("revocation: could not e-mail user %s about a new sign-in", user_id)
    else:
        logger.info("revocation: new sign-in notice sent to user %s", user_id)
