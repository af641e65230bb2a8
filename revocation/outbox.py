"""Publishing revocation work to Celery; the row, not the message, is the source of truth."""

from __future__ import annotations

import logging

from django.db import transaction

from .models import RevocationRequest

logger = logging.getLogger("revocation")


def publish(request_id: int) -> bool:
    """Send the task for `request_id`; on a broker failure flag the row for the sweeper."""
    from .tasks import process_request  # tasks import services, which import us

    try:
        process_request.delay(request_id)
    except Exception as exc:
        # The row is committed: the sweeper re-enqueues it once the broker is back.
        logger.error(
            "revocation enqueue failed id=%s error=%r; the outbox sweeper will retry",
            request_id,
            exc,
        )
        RevocationRequest.objects.filter(pk=request_id).update(enqueue_failed=True)
        return False
    return True


def publish_on_commit(request_id: int) -> None:
    """Publish once the transaction that created the row commits."""
    transaction.on_commit(lambda: publish(request_id), robust=True)
