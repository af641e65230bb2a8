"""Writes: linking sessions to users, and revoking them."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import deletion, engines, fences, linking, outbox, selectors, stamps, targets
from .app_settings import app_settings
from .exceptions import InvalidTarget, SessionLimitReached
from .models import RevocationRequest, UserSession
from .signals import sessions_revoked

logger = logging.getLogger("revocation")

State = RevocationRequest.State
Target = RevocationRequest.Target
Phase = RevocationRequest.Phase
REASON_MAX_LENGTH = RevocationRequest._meta.get_field("reason").max_length or 255


# --- The user-to-session link -------------------------------------------------


def link_session(
    *,
    old_key: str | None,
    new_key: str | None,
    user_id: int | str | None,
    ip: str | None,
    user_agent: str,
    login_id: str = "",
) -> None:
    """Make the mapping follow a session from `old_key` to `new_key` (either may be None)."""
    now = timezone.now()
    with transaction.atomic():
        moved = 0
        if old_key and new_key and user_id is not None:
            # A key rotation of the same login keeps its sign-in time.
            moved = UserSession.objects.filter(session_key=old_key, user_id=user_id).update(
                session_key=new_key, last_seen_at=now, ip=ip, user_agent=user_agent
            )
        if old_key and not moved:
            UserSession.objects.filter(session_key=old_key).delete()
        if new_key and user_id is not None and not moved:
            UserSession.objects.bulk_create(
                [
                    UserSession(
                        user_id=user_id,
                        session_key=new_key,
                        login_id=login_id,
                        created_at=now,
                        last_seen_at=now,
                        ip=ip,
                        user_agent=user_agent,
                    )
                ],
                update_conflicts=True,
                unique_fields=["session_key"],
                update_fields=[
                    "user",
                    "login_id",
                    "created_at",
                    "last_seen_at",
                    "ip",
                    "user_agent",
                ],
            )


def touch_session(
    *,
    session_key: str,
    user_id: int | str,
    ip: str | None,
    user_agent: str,
    now: datetime,
    login_id: str = "",
) -> None:
    """Record activity on a session; create its mapping if it is missing."""
    fields: dict[str, Any] = {"last_seen_at": now, "ip": ip, "user_agent": user_agent}
    if login_id:
        fields["login_id"] = login_id
    updated = UserSession.objects.filter(session_key=session_key, user_id=user_id).update(**fields)
    if not updated:
        # Sessions from before the app was installed get linked on first sight.
        link_session(
            old_key=None,
            new_key=session_key,
            user_id=user_id,
            ip=ip,
            user_agent=user_agent,
            login_id=login_id,
        )


def set_login_id(*, session_key: str, login_id: str) -> None:
    """Record the sign-in id just stamped into an older session on its mapping."""
    UserSession.objects.filter(session_key=session_key).update(login_id=login_id)


# --- Accepting revocation requests ---------------------------------------------


def _accept(request: RevocationRequest) -> RevocationRequest:
    """Commit `request` with its fences and publish its task on commit."""
    with transaction.atomic():
        request.save()
        fences.record(fences.keys_for(request), request.created_at)
        outbox.publish_on_commit(request.pk)
    logger.info(
        "revocation accepted id=%s target=%r reason=%r requested_by=%s",
        request.pk,
        request.describe_target(),
        request.reason,
        request.requested_by_id,
    )
    return request


def revoke_user_sessions(
    user: Any,
    *,
    keep_session_key: str | None = None,
    keep_session: SessionBase | None = None,
    reason: str = "",
    requested_by: Any = None,
) -> RevocationRequest:
    """Log `user` out everywhere, except one session if given; returns at once.

    Pass the request's session as `keep_session` from a web handler: it is kept by
    its sign-in id, which survives any number of concurrent requests of its own and
    a concurrent key rotation (a password change). `keep_session_key` alone keeps
    the session that has that key now.
    """
    login_id = ""
    if keep_session is not None:
        keep_session_key = keep_session.session_key
        login_id = linking.ensure_login_id(keep_session)
    elif keep_session_key:
        login_id = _login_id_of(keep_session_key)
    server_state = engines.has_server_state()
    request = _accept(
        RevocationRequest(
            target=Target.USERS,
            user_ids=[user.pk],
            # Signed-cookie "keys" are whole cookies and there is nothing to delete anyway.
            keep_session_key=(keep_session_key or "") if server_state else "",
            keep_login_id=login_id,
            reason=_clean_reason(reason),
            requested_by=requested_by,
            users_total=1,
        )
    )
    if keep_session is not None:
        # Its next request then passes the fence at once; if a concurrent request of the
        # same session saves an older stamp over this one, fences.is_fenced() still
        # spares it by its sign-in id.
        at = request.created_at.timestamp()
        keep_session[stamps.AUTH_AT] = max(stamps.signed_in_at(keep_session), at)
    return request


def _login_id_of(session_key: str) -> str:
    """Return the sign-in id recorded on the mapping of `session_key`, or ""."""
    found = UserSession.objects.filter(session_key=session_key).values_list("login_id", flat=True)
    return found.first() or ""


def revoke_sessions(
    *,
    user_ids: list[Any] | None = None,
    group: str | None = None,
    scope: tuple[str, Any] | None = None,
    everyone: bool = False,
    reason: str = "",
    requested_by: Any = None,
) -> RevocationRequest:
    """Log out a set of users, a group, a scope or everyone; returns at once.

    Raises an InvalidRequest subclass, creating nothing, unless exactly one
    valid target is given. Everyone is reached only by `everyone=True`: a blank
    group, scope, value or user is an error, never a wider target.
    """
    if not isinstance(everyone, bool):
        raise InvalidTarget(f"everyone must be True or False, got {everyone!r}")
    given = [user_ids is not None, group is not None, scope is not None, everyone]
    if sum(given) != 1:
        raise InvalidTarget("give exactly one of user_ids, group, scope or everyone=True")
    request = RevocationRequest(reason=_clean_reason(reason), requested_by=requested_by)
    if user_ids is not None:
        request.target = Target.USERS
        request.user_ids = targets.check_user_ids(user_ids)
        request.users_total = len(request.user_ids)
    elif group is not None:
        request.target = Target.GROUP
        request.group_name = targets.check_group(group)
    elif scope is not None:
        if not (isinstance(scope, tuple | list) and len(scope) == 2):
            raise InvalidTarget(f"scope must be a (name, value) pair, got {scope!r}")
        name, value = scope
        request.target = Target.SCOPE
        request.scope_name = targets.clean_text(name, "scope name", max_length=64)
        request.scope_value = targets.check_scope_value(name, value)
    else:
        request.target = Target.EVERYONE
    return _accept(request)


def _clean_reason(reason: Any) -> str:
    """Return `reason` if the audit log can keep it whole; raise InvalidRequest otherwise."""
    return targets.clean_text(reason, "reason", max_length=REASON_MAX_LENGTH, blank=True)


def limit_sessions(user: Any, *, current_key: str | None) -> RevocationRequest | None:
    """Apply REVOCATION_MAX_SESSIONS_PER_USER to a login that just happened.

    Under "revoke_oldest" the oldest other sessions are revoked through the
    pipeline; under "refuse" SessionLimitReached is raised and nothing changes.
    """
    limit = app_settings.MAX_SESSIONS_PER_USER
    if limit <= 0:
        return None
    others = selectors.sessions_for_user(user).order_by("created_at", "pk")
    if current_key:
        others = others.exclude(session_key=current_key)
    excess = others.count() - (limit - 1)
    if excess <= 0:
        return None
    if app_settings.MAX_SESSIONS_POLICY == "refuse":
        raise SessionLimitReached(
            f"You are already signed in on {limit} device(s), the most allowed. "
            "Log out on another device first."
        )
    return _accept(
        RevocationRequest(
            target=Target.SESSIONS,
            user_ids=[user.pk],
            session_ids=list(others.values_list("pk", flat=True)[:excess]),
            reason=f"more than {limit} concurrent sessions",
            users_total=1,
        )
    )


# --- Carrying requests out (called by the Celery task) ---------------------------


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
        request = RevocationRequest.objects.select_for_update().filter(pk=request_id).first()
        if request is None or request.is_finished:
            return False
        now = timezone.now()
        if request.state == State.PENDING:
            request.state = State.RUNNING
            request.started_at = now
            if request.target != Target.USERS:
                request.users_total = targets.users_of(request).count()
        more = (
            _revoke_user_page(request)
            if request.phase == Phase.USERS
            else _revoke_session_page(request)
        )
        if not more:
            request.state = State.DONE
            request.finished_at = now
        # The heartbeat the sweeper reads: the end of the page, not its start, so only
        # one page longer than REVOCATION_STALL_TIMEOUT can look like a stall.
        request.updated_at = timezone.now()
        request.enqueue_failed = False
        request.save()
    if not more:
        _finished(request)
    return more


def _revoke_user_page(request: RevocationRequest) -> bool:
    """Revoke the mapped sessions of the next page of target users."""
    batch = app_settings.BATCH_SIZE
    users = targets.users_of(request).order_by("pk")
    if request.cursor:
        pk_field = get_user_model()._meta.pk
        assert pk_field is not None  # noqa: S101
        users = users.filter(pk__gt=pk_field.to_python(request.cursor))
    page = list(users.values_list("pk", flat=True)[:batch])
    if not page:
        if request.target == Target.EVERYONE and engines.has_table():
            # Sessions with no mapping (from before the app was installed) go next.
            request.phase = Phase.SESSIONS
            request.cursor = ""
            return True
        return False
    revoked = _revoke_mapped(page, request)
    request.cursor = str(page[-1])
    request.users_done += len(page)
    request.sessions_revoked += revoked
    logger.info(
        "revocation batch id=%s users=%d sessions=%d users_done=%d/%d",
        request.pk,
        len(page),
        revoked,
        request.users_done,
        request.users_total,
    )
    return True


def _revoke_mapped(user_ids: list[Any], request: RevocationRequest) -> int:
    """Delete sessions of `user_ids` that predate the request, and their mappings."""
    sessions = UserSession.objects.filter(user_id__in=user_ids, created_at__lte=request.created_at)
    if request.target == Target.SESSIONS:
        sessions = sessions.filter(pk__in=request.session_ids)
    if request.keep_session_key:
        sessions = sessions.exclude(session_key=request.keep_session_key)
    if request.keep_login_id:
        # The kept sign-in, even if a concurrent request rotated its key since.
        sessions = sessions.exclude(login_id=request.keep_login_id)
    chunk = app_settings.BATCH_SIZE * 5
    revoked = 0
    while True:
        # Bounded even if a single user holds an enormous number of sessions.
        selected, deleted = deletion.delete_mapped(sessions.order_by("pk")[:chunk])
        revoked += deleted
        if selected < chunk:
            return revoked


def _revoke_session_page(request: RevocationRequest) -> bool:
    """Delete the next page of unmapped sessions (the `everyone` target, table engines)."""
    model = engines.session_model()
    survivors = UserSession.objects.filter(created_at__gt=request.created_at).values("session_key")
    keys = list(
        model.objects.filter(session_key__gt=request.cursor)
        .exclude(session_key__in=survivors)
        .order_by("session_key")
        .values_list("session_key", flat=True)[: app_settings.BATCH_SIZE]
    )
    if not keys:
        return False
    request.sessions_revoked += deletion.delete_sessions(keys)
    request.cursor = keys[-1]
    return True


def _finished(request: RevocationRequest) -> None:
    """Log and signal a request that reached `done`."""
    seconds = (
        (request.finished_at - request.started_at).total_seconds()
        if request.finished_at and request.started_at
        else 0.0
    )
    logger.info(
        "revocation finished id=%s users=%d sessions=%d seconds=%.3f",
        request.pk,
        request.users_done,
        request.sessions_revoked,
        seconds,
    )
    sessions_revoked.send(
        sender=RevocationRequest, revocation=request, sessions_revoked=request.sessions_revoked
    )


def fail_request(request_id: int, *, error: str) -> None:
    """Mark a request failed with `error` (kept for the audit log)."""
    now = timezone.now()
    RevocationRequest.objects.filter(pk=request_id).exclude(state=State.DONE).update(
        state=State.FAILED, error=error[:2000], finished_at=now, updated_at=now
    )
    logger.error("revocation failed id=%s error=%s", request_id, error)


def sweep_outbox() -> list[int]:
    """Re-enqueue requests whose publish failed or that stopped making progress."""
    now = timezone.now()
    stale = now - timedelta(seconds=app_settings.STALL_TIMEOUT)
    active = RevocationRequest.objects.filter(state__in=[State.PENDING, State.RUNNING])
    due = active.filter(Q(enqueue_failed=True) | Q(updated_at__lt=stale)).order_by("pk")
    requeued = []
    for request_id in due.values_list("pk", flat=True):
        if outbox.publish(request_id):
            # Not due again until another stall timeout passes without progress.
            RevocationRequest.objects.filter(pk=request_id).update(
                updated_at=now, enqueue_failed=False
            )
            requeued.append(request_id)
    if requeued:
        logger.warning("revocation sweeper re-enqueued ids=%s", requeued)
    return requeued


# --- Adopting the app on a site with existing sessions ---------------------------


def backfill_page(*, after: str, batch: int) -> tuple[str | None, int]:
    """Link one keyset page of stored sessions after `after`; return (next cursor, linked)."""
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
        links.append((key, decoded[SESSION_KEY], signed_in, decoded.get(stamps.LOGIN_ID, "")))
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


# --- Ending one session (the sessions page and the API) ---------------------------


def end_session(*, user: Any, session_id: Any) -> bool:
    """End `user`'s session `session_id` now; return False if they have no such session.

    One session is small work, so it happens in the request: deleted through the
    engine (cached copies too) together with its mapping. Another user's id is
    indistinguishable from a missing one.
    """
    try:
        row = UserSession.objects.filter(pk=int(session_id), user_id=user.pk).first()
    except (TypeError, ValueError):
        return False
    if row is None:
        return False
    deletion.delete_sessions([row.session_key])
    UserSession.objects.filter(pk=row.pk).delete()
    logger.info("session ended id=%s user=%s", row.pk, user.pk)
    return True
