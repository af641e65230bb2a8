"""Accepting revocation requests: validate, commit the row and its fences, publish on commit."""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from contextlib import nullcontext
from typing import Any

from django.contrib.sessions.backends.base import SessionBase
from django.db import connections, router, transaction
from django.utils import timezone
from django.utils.translation import ngettext

from .. import deletion, engines, fences, selectors, sql, stamps, targets
from ..app_settings import app_settings
from ..exceptions import SessionLimitReached
from ..models import RevocationFence, RevocationRequest, UserSession
from . import links, outbox

logger = logging.getLogger("revocation")


def _accept(
    target: targets.Target, revocation: RevocationRequest, ended: Iterable[str] = ()
) -> RevocationRequest:
    """Commit `revocation` of `target` with its fences and publish its task on commit.

    `ended` are the fences of single sign-ins it ends (`_sign_in_fences`).
    """
    target.store(revocation)
    keys = [*target.fence_keys(), *ended]
    if revocation.keep_login_id:
        keys.append(fences.keep_key(revocation.keep_login_id))
    _commit(revocation, sorted(set(keys)))
    logger.info(
        "revocation accepted id=%s target=%r reason=%r requested_by=%s",
        revocation.pk,
        target.describe(),
        revocation.reason,
        revocation.requested_by_id,
    )
    return revocation


def _commit(revocation: RevocationRequest, keys: list[str]) -> None:
    """Commit `revocation` with fences `keys`; mirror those and publish its task on commit.

    The row and its fences commit together, before the publish: in one statement
    where the database can (PostgreSQL), else in one transaction. One statement
    needs no transaction, so the handler pays no BEGIN or COMMIT round trip.
    """
    using = router.db_for_write(RevocationRequest)
    at = revocation.created_at
    if router.db_for_write(RevocationFence) == using:
        # Inside the caller's transaction, a savepoint, as atomic() gave: a failed
        # statement would otherwise abort the caller's whole transaction (PostgreSQL).
        nested = connections[using].in_atomic_block
        with transaction.atomic(using=using) if nested else nullcontext():
            stored = sql.dialect(using).insert_with_fences(revocation, keys, at)
            if stored is not None:
                fences.mirror_on_commit(stored, using=using)
                outbox.publish_on_commit(revocation.pk)
                return
    with transaction.atomic(using=using):
        revocation.save(using=using)
        fences.record(keys, at)
        outbox.publish_on_commit(revocation.pk)


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
    the session whose mapping has that key now (`engines.link_key`).
    """
    login_id = ""
    if keep_session is not None:
        login_id = links.ensure_login_id(keep_session)
        keep_session_key = engines.link_key(keep_session)
    elif keep_session_key:
        login_id = links.login_id_of(keep_session_key)
    revocation = _accept(
        targets.Users((user.pk,)),
        RevocationRequest(
            keep_session_key=keep_session_key or "",
            keep_login_id=login_id,
            reason=targets.clean_reason(reason),
            requested_by=requested_by,
        ),
    )
    if keep_session is not None:
        # Its next request then passes the fence at once; if a concurrent request of the
        # same session saves an older stamp over this one, fences.is_fenced() still
        # spares it by its sign-in id.
        at = revocation.created_at.timestamp()
        keep_session[stamps.AUTH_AT] = max(stamps.signed_in_at(keep_session), at)
    return revocation


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
    target = targets.parse(user_ids=user_ids, group=group, scope=scope, everyone=everyone)
    return revoke(target, reason=reason, requested_by=requested_by)


def revoke(
    target: targets.Target, *, reason: str = "", requested_by: Any = None
) -> RevocationRequest:
    """Log out `target` (from `targets.parse()`); returns at once. InvalidRequest: bad reason."""
    revocation = RevocationRequest(reason=targets.clean_reason(reason), requested_by=requested_by)
    return _accept(target, revocation)


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
            ngettext(
                "You are already signed in on %(limit)d device, the most allowed. "
                "Log out on another device first.",
                "You are already signed in on %(limit)d devices, the most allowed. "
                "Log out on another device first.",
                limit,
            )
            % {"limit": limit}
        )
    excess_rows = list(others.values_list("pk", "login_id")[:excess])
    return _accept(
        targets.Sessions((user.pk,), tuple(pk for pk, _ in excess_rows)),
        RevocationRequest(reason=f"more than {limit} concurrent sessions"),
        _sign_in_fences(login_id for _, login_id in excess_rows),
    )


def _sign_in_fences(login_ids: Iterable[str]) -> list[str]:
    """Return the fences that end these sign-ins where deleting cannot (signed cookies)."""
    if engines.has_server_state():
        return []  # deleting the session ends it
    return [fences.login_key(login_id) for login_id in login_ids if login_id]


def end_sign_in(link_key: str) -> None:
    """End the signed-cookie sign-in whose mapping is `link_key` for good: fenced, row deleted.

    A logout or a new sign-in in that browser: no server holds a signed cookie, so a
    copy of it would otherwise stay valid.
    """
    fences.record(_sign_in_fences([engines.login_id_of(link_key)]), timezone.now())
    UserSession.objects.filter(session_key=link_key).delete()


class Ended(enum.Enum):
    """What `end_session()` did."""

    MISSING = "no such session"  # or another user's: the two are indistinguishable
    CURRENT = "the session asking"  # left to the caller, who logs its own request out
    ENDED = "ended"


def end_session(user: Any, session_id: Any, *, current_key: str | None) -> Ended:
    """End `user`'s session `session_id` now, unless it is the session asking (`current_key`).

    One session is small work, so it happens in the web request, not on a worker:
    deleted through the engine (cached copies too) together with its mapping; a
    signed cookie is fenced off by its sign-in id first.
    """
    session = selectors.user_session(user, session_id)
    if session is None:
        return Ended.MISSING
    if session.session_key == current_key:
        return Ended.CURRENT
    fences.record(_sign_in_fences([session.login_id]), timezone.now())
    deletion.delete_sessions([session.session_key])
    UserSession.objects.filter(pk=session.pk).delete()
    logger.info("session ended id=%s user=%s", session.pk, user.pk)
    return Ended.ENDED


def end_sessions(
    session_ids: Iterable[Any], *, keep_session_key: str | None = None, requested_by: Any = None
) -> int:
    """End the sessions `session_ids` (UserSession ids, of any users) now; return how many.

    An operator's action (the admin): like `end_session()`, in the request and not on
    a worker, each session deleted through the engine (cached copies too) together
    with its mapping, a batch per statement. The caller bounds `session_ids`. The
    session `keep_session_key` (the operator's own) is never ended.
    """
    ids = sorted({int(pk) for pk in session_ids})
    rows = UserSession.objects.filter(pk__in=ids)
    if keep_session_key:
        rows = rows.exclude(session_key=keep_session_key)
    fences.record(_sign_in_fences(rows.values_list("login_id", flat=True)), timezone.now())
    ended, finished = 0, not ids
    while not finished:
        deleted, finished = deletion.delete_mapped(rows, limit=app_settings.BATCH_SIZE)
        ended += deleted
        finished = finished or not deleted
    logger.info(
        "sessions ended selected=%s ended=%s requested_by=%s",
        len(ids),
        ended,
        getattr(requested_by, "pk", None),
    )
    return ended
