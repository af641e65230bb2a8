"""Carrying revocation requests out, page by page (called by the Celery task)."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .. import deletion, engines, sql, targets
from ..app_settings import app_settings
from ..models import RevocationRequest, UserSession
from ..signals import sessions_revoked

logger = logging.getLogger("revocation")

State = RevocationRequest.State
Phase = RevocationRequest.Phase


def run_request(request_id: int, *, budget_seconds: float) -> bool:
    """Process pages of `request_id` for up to `budget_seconds`; return True if work remains."""
    deadline = time.monotonic() + budget_seconds
    while _process_page(request_id):
        if time.monotonic() >= deadline:
            return True
    return False


def _process_page(request_id: int) -> bool:
    """Revoke one page of the request in one transaction; return True if more pages remain."""
    with transaction.atomic():
        # The row lock serialises duplicate deliveries: a second worker waits, then
        # resumes from the cursor the first one committed.
        revocation = RevocationRequest.objects.select_for_update().filter(pk=request_id).first()
        if revocation is None or revocation.is_finished:
            return False
        target = targets.load(revocation)
        now = timezone.now()
        if revocation.state == State.PENDING:
            revocation.state = State.RUNNING
            revocation.started_at = now
            if not isinstance(target, targets.Users):
                # Users and sessions targets counted theirs when accepted.
                revocation.users_total = target.users().count()
        more = (
            _revoke_user_page(revocation, target)
            if revocation.phase == Phase.USERS
            else _revoke_session_page(revocation)
        )
        if not more:
            revocation.state = State.DONE
            revocation.finished_at = now
        # The heartbeat the sweeper reads: the end of the page, not its start, so only
        # one page longer than REVOCATION_STALL_TIMEOUT can look like a stall.
        revocation.updated_at = timezone.now()
        revocation.enqueue_failed = False
        revocation.save()
    if not more:
        _finished(revocation)
    return more


def _revoke_user_page(revocation: RevocationRequest, target: targets.Target) -> bool:
    """Revoke the mapped sessions of the next page of target users."""
    batch = app_settings.BATCH_SIZE
    after = None
    if revocation.cursor:
        pk_field = get_user_model()._meta.pk
        assert pk_field is not None  # noqa: S101
        after = pk_field.to_python(revocation.cursor)
    page = list(target.user_ids_after(after)[:batch])
    if not page:
        if target.unmapped_too and engines.has_table():
            # Sessions with no mapping (from before the app was installed) go next.
            revocation.phase = Phase.SESSIONS
            revocation.cursor = ""
            return True
        return False
    revoked = _revoke_mapped(page, revocation, target)
    revocation.cursor = str(page[-1])
    revocation.users_done += len(page)
    revocation.sessions_revoked += revoked
    logger.info(
        "revocation batch id=%s users=%d sessions=%d users_done=%d/%d",
        revocation.pk,
        len(page),
        revoked,
        revocation.users_done,
        revocation.users_total,
    )
    return True


def _revoke_mapped(
    user_ids: list[Any], revocation: RevocationRequest, target: targets.Target
) -> int:
    """Delete sessions of `user_ids` that predate the request, and their mappings."""
    mappings = UserSession.objects.filter(
        sql.AnyOf(F("user_id"), user_ids), created_at__lte=revocation.created_at
    )
    sessions = target.mappings(mappings)
    if revocation.keep_session_key:
        sessions = sessions.exclude(session_key=revocation.keep_session_key)
    if revocation.keep_login_id:
        # The kept sign-in, even if a concurrent request rotated its key since.
        sessions = sessions.exclude(login_id=revocation.keep_login_id)
    chunk = app_settings.BATCH_SIZE * 5
    revoked = 0
    while True:
        # Bounded even if a single user holds an enormous number of sessions.
        deleted, finished = deletion.delete_mapped(sessions, limit=chunk)
        revoked += deleted
        if finished:
            return revoked


def _revoke_session_page(revocation: RevocationRequest) -> bool:
    """Delete the next page of unmapped sessions (the `everyone` target, table engines)."""
    model = engines.session_model()
    survivors = UserSession.objects.filter(created_at__gt=revocation.created_at).values(
        "session_key"
    )
    keys = list(
        model.objects.filter(session_key__gt=revocation.cursor)
        .exclude(session_key__in=survivors)
        .order_by("session_key")
        .values_list("session_key", flat=True)[: app_settings.BATCH_SIZE]
    )
    if not keys:
        return False
    revocation.sessions_revoked += deletion.delete_sessions(keys)
    revocation.cursor = keys[-1]
    return True


def _finished(revocation: RevocationRequest) -> None:
    """Log and signal a request that reached `done`."""
    seconds = (
        (revocation.finished_at - revocation.started_at).total_seconds()
        if revocation.finished_at and revocation.started_at
        else 0.0
    )
    logger.info(
        "revocation finished id=%s users=%d sessions=%d seconds=%.3f",
        revocation.pk,
        revocation.users_done,
        revocation.sessions_revoked,
        seconds,
    )
    sessions_revoked.send(
        sender=RevocationRequest,
        revocation=revocation,
        sessions_revoked=revocation.sessions_revoked,
    )


def fail_request(request_id: int, *, error: str) -> None:
    """Mark a request failed with `error` (kept for the audit log)."""
    now = timezone.now()
    RevocationRequest.objects.filter(pk=request_id).exclude(state=State.DONE).update(
        state=State.FAILED, error=error[:2000], finished_at=now, updated_at=now
    )
    logger.error("revocation failed id=%s error=%s", request_id, error)
