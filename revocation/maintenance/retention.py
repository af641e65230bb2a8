"""Prune what is only kept for a while: finished requests and old fences."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from ..app_settings import app_settings
from ..models import RevocationFence, RevocationRequest
from ._base import Progress, delete_in_batches, no_progress


def prune_requests(*, now: datetime, batch_size: int, progress: Progress | None = None) -> int:
    """Delete finished requests older than REVOCATION_REQUEST_RETENTION_DAYS (0 keeps all)."""
    days = app_settings.REQUEST_RETENTION_DAYS
    if days <= 0:
        return 0
    State = RevocationRequest.State
    old = RevocationRequest.objects.filter(
        state__in=[State.DONE, State.FAILED], finished_at__lt=now - timedelta(days=days)
    )
    return delete_in_batches(old, batch_size, "requests", progress or no_progress)


def prune_fences(*, now: datetime, batch_size: int, progress: Progress | None = None) -> int:
    """Delete fences older than SESSION_COOKIE_AGE: no session they could stop is still valid."""
    stale = RevocationFence.objects.filter(
        not_before__lt=now - timedelta(seconds=settings.SESSION_COOKIE_AGE)
    )
    return delete_in_batches(stale, batch_size, "fences", progress or no_progress)
