"""Prune what is only kept for a while: finished requests, their personal data, old fences."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import router, transaction
from django.db.models import Q

from ..app_settings import app_settings
from ..models import RevocationFence, RevocationRequest
from ._base import Progress, delete_in_batches, no_progress

# What a finished request keeps about people, and what each becomes when erased. The
# targeted users' ids go too: they say who was logged out. What happened stays: the
# kind of target, group or scope, the counts, the times and any error.
PERSONAL_FIELDS: dict[str, Any] = {
    "requested_by": None,
    "reason": "",
    "user_ids": [],
    "session_ids": [],
    "keep_session_key": "",
    "keep_login_id": "",
}


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


def erase_personal_data(*, now: datetime, batch_size: int, progress: Progress | None = None) -> int:
    """Erase who asked, why and whom from requests finished over AUDIT_PERSONAL_DATA_DAYS ago.

    0 days keeps them. `batch_size` rows per short transaction; a row erased before
    no longer matches, so each run only reads what is left to erase.
    """
    days = app_settings.AUDIT_PERSONAL_DATA_DAYS
    if days <= 0:
        return 0
    State = RevocationRequest.State
    still_personal = Q(requested_by__isnull=False)
    for name, erased in PERSONAL_FIELDS.items():
        if erased is not None:
            still_personal |= ~Q(**{name: erased})
    old = RevocationRequest.objects.filter(
        still_personal,
        state__in=[State.DONE, State.FAILED],
        finished_at__lt=now - timedelta(days=days),
    ).order_by()
    using = router.db_for_write(RevocationRequest)
    step = progress or no_progress
    erased_rows = 0
    while True:
        with transaction.atomic(using=using):
            ids = list(old.using(using).values_list("pk", flat=True)[:batch_size])
            if ids:
                # Through the queryset: a row that stopped matching meanwhile is left alone.
                erased_rows += old.using(using).filter(pk__in=ids).update(**PERSONAL_FIELDS)
        step("erasure", erased_rows)
        if len(ids) < batch_size:
            return erased_rows


def prune_fences(*, now: datetime, batch_size: int, progress: Progress | None = None) -> int:
    """Delete fences older than twice SESSION_COOKIE_AGE: no session they could stop is valid.

    Not once: a request in flight as a fence was recorded passed its check before it,
    and may save its session after it (a signed cookie, a cache entry), valid for
    SESSION_COOKIE_AGE from then. The second age bounds how long that request ran.
    """
    stale = RevocationFence.objects.filter(
        not_before__lt=now - timedelta(seconds=2 * settings.SESSION_COOKIE_AGE)
    )
    return delete_in_batches(stale, batch_size, "fences", progress or no_progress)
