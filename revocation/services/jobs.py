"""Carrying revocation requests out, page by page (called by the Celery task)."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from .. import deletion, engines, sql, targets
from ..app_settings import app_settings
from ..models import RevocationPart, RevocationRequest, UserSession
from ..signals import sessions_revoked
from . import outbox

logger = logging.getLogger("revocation")

State = RevocationRequest.State
Phase = RevocationRequest.Phase


def run_request(request_id: int, *, budget_seconds: float, part: int | None = None) -> bool:
    """Process pages of `request_id` (or its `part`) for up to `budget_seconds`.

    Return True if work remains for this task to hand on.
    """
    if part is not None:
        return _run_part(request_id, part, budget_seconds=budget_seconds)
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
            if _fans_out(revocation):
                _split(revocation, target)
        if revocation.phase == Phase.PARTS:
            # The parts carry the job: this task (first, redelivered or re-enqueued
            # by the sweeper) only starts those not done, and finishes the request
            # if a worker died between its last part's page and the finishing.
            _start_parts(revocation)
            more = False
        else:
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
    if revocation.state == State.DONE:
        _finished(revocation)
    elif revocation.phase == Phase.PARTS:
        _finish_parts(request_id)
    return more


def _user_id(text: str) -> Any:
    """Return the user id stored as `text` on a cursor or bound ("" is None: open)."""
    if not text:
        return None
    pk_field = get_user_model()._meta.pk
    assert pk_field is not None  # noqa: S101
    return pk_field.to_python(text)


def _revoke_user_page(revocation: RevocationRequest, target: targets.Target) -> bool:
    """Revoke the mapped sessions of the next page of target users."""
    batch = app_settings.BATCH_SIZE
    page = list(target.user_ids_after(_user_id(revocation.cursor))[:batch])
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


# --- Fan-out: a large request in key ranges, each carried out by its own task ---------------


def _fans_out(revocation: RevocationRequest) -> bool:
    """Return whether a request starting now is split into parts."""
    return (
        revocation.phase == Phase.USERS
        and app_settings.FANOUT_WIDTH > 1
        and revocation.users_total >= app_settings.FANOUT_MIN_USERS
        and not _single_writer()
    )


def _single_writer() -> bool:
    """Return whether the database takes one writer at a time (parallel pages would queue)."""
    return connection.vendor == "sqlite"


def _split(revocation: RevocationRequest, target: targets.Target) -> None:
    """Create the request's parts, ranges of about equal numbers of users, and go to PARTS."""
    width = app_settings.FANOUT_WIDTH
    ids = target.user_ids_after(None)
    bounds: list[str] = []
    for number in range(1, width):
        # The last id of each range: the quantiles of the ids, one OFFSET scan each.
        offset = revocation.users_total * number // width - 1
        # Fewer users than parts: some ranges would be empty, and have no last id.
        found = list(ids[offset : offset + 1]) if offset >= 0 else []
        # Users gone since the count may leave fewer ids, or the same id twice.
        if found and (not bounds or str(found[0]) != bounds[-1]):
            bounds.append(str(found[0]))
    edges = ["", *bounds, ""]
    RevocationPart.objects.bulk_create(
        RevocationPart(
            request=revocation, number=number, after=edges[number], upto=edges[number + 1]
        )
        for number in range(len(edges) - 1)
    )
    revocation.phase = Phase.PARTS
    logger.info("revocation fan-out id=%s parts=%d", revocation.pk, len(edges) - 1)


def _start_parts(revocation: RevocationRequest) -> None:
    """Publish, once this transaction commits, the task of every part not done."""
    for part in revocation.parts.filter(done=False).values_list("pk", flat=True):
        outbox.publish_on_commit(revocation.pk, part)


def _run_part(request_id: int, part: int, *, budget_seconds: float) -> bool:
    """Process pages of one part for up to `budget_seconds`; return True if it has more."""
    deadline = time.monotonic() + budget_seconds
    while _process_part_page(part):
        if time.monotonic() >= deadline:
            return True
    _finish_parts(request_id)
    return False


def _process_part_page(part_id: int) -> bool:
    """Revoke one page of a part in one transaction; return True if more pages remain."""
    with transaction.atomic():
        # Lock order: the part row, then (the counters' UPDATE) the request row. The
        # part's lock serialises duplicate deliveries, as the request's does for a page.
        part = (
            RevocationPart.objects.select_for_update()
            .select_related("request")
            .filter(pk=part_id)
            .first()
        )
        if part is None or part.done or part.request.is_finished:
            return False
        revocation = part.request
        target = targets.load(revocation)
        batch = app_settings.BATCH_SIZE
        fetched = list(target.user_ids_after(_user_id(part.cursor or part.after))[:batch])
        upto = _user_id(part.upto)
        page = fetched if upto is None else [uid for uid in fetched if uid <= upto]
        # A short page is the range's last: no empty page (and transaction) to learn it.
        part.done = len(page) < batch
        revoked = _revoke_mapped(page, revocation, target) if page else 0
        now = timezone.now()
        if page:
            part.cursor = str(page[-1])
            part.users_done += len(page)
            part.sessions_revoked += revoked
            # Last, so the request row (every part's) is locked only until the commit;
            # F(): the other parts add theirs concurrently.
            RevocationRequest.objects.filter(pk=revocation.pk).update(
                users_done=F("users_done") + len(page),
                sessions_revoked=F("sessions_revoked") + revoked,
                updated_at=now,
            )
        part.updated_at = now
        part.enqueue_failed = False
        part.save()
    logger.info(
        "revocation batch id=%s part=%d users=%d sessions=%d",
        revocation.pk,
        part.number,
        len(page),
        revoked,
    )
    return not part.done


def _finish_parts(request_id: int) -> None:
    """Finish a fanned-out request whose parts are all done (at most once)."""
    # Its own transaction, after the part's committed: the read of the parts, after the
    # request row's lock, then sees every part committed before it (on MariaDB too,
    # whose snapshot is taken at a transaction's first plain read). Whichever part ends
    # last finishes the request; one that dies first leaves it to the request's task.
    with transaction.atomic():
        revocation = RevocationRequest.objects.select_for_update().filter(pk=request_id).first()
        if revocation is None or revocation.phase != Phase.PARTS or revocation.is_finished:
            return
        if revocation.parts.filter(done=False).exists():
            return
        target = targets.load(revocation)
        now = timezone.now()
        if target.unmapped_too and engines.has_table():
            # Sessions with no mapping go next, on the request's own task.
            revocation.phase = Phase.SESSIONS
            revocation.cursor = ""
            outbox.publish_on_commit(revocation.pk)
        else:
            revocation.state = State.DONE
            revocation.finished_at = now
        revocation.updated_at = now
        revocation.save(update_fields=["phase", "cursor", "state", "finished_at", "updated_at"])
    if revocation.state == State.DONE:
        _finished(revocation)


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
