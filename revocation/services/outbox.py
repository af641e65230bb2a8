"""The outbox: publishing revocation work to Celery, and the sweeper that makes it reliable.

The committed `RevocationRequest` row, not the message, is the source of truth:
a publish that fails flags the row, and the sweeper (a beat task) publishes
again every request, or part of a fanned-out request, whose publish failed or
that stopped making progress.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import current_app
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..app_settings import app_settings
from ..models import RevocationPart, RevocationRequest

logger = logging.getLogger("revocation")

# By name, not by importing revocation.tasks: the tasks call services, not the reverse.
PROCESS_TASK = "revocation.process_request"
State = RevocationRequest.State


def publish(request_id: int, part: int | None = None) -> bool:
    """Send the task for `request_id` (or its `part`); on a broker failure flag the row."""
    try:
        # A signature, not send_task(): it runs the registered task's apply_async, which
        # honours task_always_eager (a host project's test settings) as .delay() did.
        kwargs = {} if part is None else {"part": part}
        current_app.signature(PROCESS_TASK, args=(request_id,), kwargs=kwargs).apply_async()
    except Exception as exc:
        # The row is committed: the sweeper re-enqueues it once the broker is back.
        logger.error(
            "revocation enqueue failed id=%s part=%s error=%r; the outbox sweeper will retry",
            request_id,
            part,
            exc,
        )
        rows = (
            RevocationRequest.objects.filter(pk=request_id)
            if part is None
            else RevocationPart.objects.filter(pk=part)
        )
        rows.update(enqueue_failed=True)
        return False
    return True


def hand_on(request_id: int, part: int | None = None) -> bool:
    """Hand the rest of a running job (or part) to a fresh task (flagged if that fails)."""
    return publish(request_id, part)


def publish_on_commit(request_id: int, part: int | None = None) -> None:
    """Publish once the transaction that created (or changed) the row commits."""
    transaction.on_commit(lambda: publish(request_id, part), robust=True)


def sweep() -> list[int]:
    """Re-enqueue requests whose publish failed or that stopped making progress."""
    now = timezone.now()
    stale = now - timedelta(seconds=app_settings.STALL_TIMEOUT)
    active = RevocationRequest.objects.filter(state__in=[State.PENDING, State.RUNNING])
    due = active.filter(Q(enqueue_failed=True) | Q(updated_at__lt=stale)).order_by("pk")
    requeued = []
    for request_id in due.values_list("pk", flat=True):
        if publish(request_id):
            # Not due again until another stall timeout passes without progress.
            RevocationRequest.objects.filter(pk=request_id).update(
                updated_at=now, enqueue_failed=False
            )
            requeued.append(request_id)
    if requeued:
        logger.warning("revocation sweeper re-enqueued ids=%s", requeued)
    _sweep_parts(stale, now)
    return requeued


def _sweep_parts(stale: datetime, now: datetime) -> None:
    """Re-enqueue the parts of running requests whose publish failed or that stalled."""
    # A part's page also touches its request, so a request with one live part never
    # looks stalled: a stalled part is found by its own heartbeat.
    due = (
        RevocationPart.objects.filter(done=False, request__state=State.RUNNING)
        .filter(Q(enqueue_failed=True) | Q(updated_at__lt=stale))
        .order_by("pk")
    )
    requeued = []
    for request_id, part in due.values_list("request_id", "pk"):
        if publish(request_id, part):
            RevocationPart.objects.filter(pk=part).update(updated_at=now, enqueue_failed=False)
            requeued.append(part)
    if requeued:
        logger.warning("revocation sweeper re-enqueued parts=%s", requeued)
