"""Adopting the app on a site with existing sessions: link them to their users."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.utils import timezone
from django.utils.translation import gettext

from .. import engines, stamps
from ..exceptions import InvalidRequest
from ..models import UserSession


def backfill_page(*, after: str, batch: int) -> tuple[str | None, int]:
    """Link one keyset page of stored sessions after `after`; return (next cursor, linked).

    Raises InvalidRequest for an engine with no session table to scan.
    """
    if not engines.has_table():
        raise InvalidRequest(
            gettext(
                "SESSION_ENGINE %r keeps no session table to scan; "
                "only the db and cached_db engines can be backfilled."
            )
            % (engines.engine(),)
        )
    model = engines.session_model()
    store = engines.store_class()()
    rows = list(
        model.objects.filter(session_key__gt=after, expire_date__gt=timezone.now())
        .order_by("session_key")
        .values_list("session_key", "session_data", "expire_date")[:batch]
    )
    if not rows:
        return None, 0
    links = []
    for key, data, expire_date in rows:
        decoded = store.decode(data)
        if SESSION_KEY not in decoded:
            continue
        # The login time if we stamped it, else the last save: the best estimate we have.
        signed_in = (
            datetime.fromtimestamp(decoded[stamps.AUTH_AT], tz=UTC)
            if stamps.AUTH_AT in decoded
            else expire_date - timedelta(seconds=settings.SESSION_COOKIE_AGE)
        )
        links.append((key, decoded[SESSION_KEY], signed_in, stamps.login_id(decoded)))
    user_model = get_user_model()
    existing = set(
        user_model._default_manager.filter(pk__in={uid for _, uid, _, _ in links}).values_list(
            "pk", flat=True
        )
    )
    pk_field = user_model._meta.pk
    assert pk_field is not None  # noqa: S101
    new = [
        UserSession(session_key=key, user_id=uid, login_id=login, created_at=at, last_seen_at=at)
        for key, raw_uid, at, login in links
        if (uid := pk_field.to_python(raw_uid)) in existing
    ]
    created = UserSession.objects.bulk_create(new, ignore_conflicts=True)
    return rows[-1][0], len(created)
