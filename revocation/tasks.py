"""Celery tasks: thin wrappers that take ids and call services.

Delivery is at-least-once (acks_late + reject_on_worker_lost, see
config/settings/base.py); every task is safe to run twice.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import DatabaseError

from . import maintenance, services
from .app_settings import app_settings

MAX_RETRIES = 5


# max_retries: with Celery's default (3) the fourth retry() re-raised the error before
# MAX_RETRIES was reached, and the request was never marked failed.
@shared_task(bind=True, name="revocation.process_request", acks_late=True, max_retries=MAX_RETRIES)
def process_request(self: Any, request_id: int, part: int | None = None) -> None:
    """Revoke pages of a request (or of one `part` of it) for a while, then hand on the rest."""
    try:
        more = services.run_request(
            request_id, budget_seconds=app_settings.PAGE_BUDGET_SECONDS, part=part
        )
    except DatabaseError as exc:
        # Transient (connection lost, lock timeout): the cursor makes a retry resume.
        if self.request.retries < MAX_RETRIES:
            raise self.retry(exc=exc, countdown=min(2**self.request.retries, 30)) from exc
        services.fail_request(request_id, error=f"database error: {exc}")
        raise
    except Exception as exc:
        services.fail_request(request_id, error=f"{type(exc).__name__}: {exc}")
        raise
    if more:
        # Through the outbox: if the broker is down right now, the row is flagged and
        # the sweeper hands it on as soon as it is back, instead of after a stall.
        services.hand_on(request_id, part)


@shared_task(name="revocation.sweep_outbox", acks_late=True)
def sweep_outbox() -> list[int]:
    """Re-enqueue revocation requests that were never published or have stalled."""
    return services.sweep_outbox()


@shared_task(name="revocation.clearsessions", acks_late=True)
def clearsessions() -> dict[str, Any]:
    """Delete expired sessions and prune orphaned mappings (nightly); skips if already running."""
    return maintenance.clearsessions().as_dict()


@shared_task(name="revocation.prune_orphans", acks_late=True)
def prune_orphans() -> dict[str, Any]:
    """Prune orphaned mappings and old finished requests (hourly); skips if already running."""
    return maintenance.prune_orphans().as_dict()
