"""Revocation targets: validation at request time, and the users they resolve to."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils.module_loading import import_string

from . import fences
from .app_settings import app_settings
from .exceptions import InvalidRequest, InvalidTarget, UnknownGroup, UnknownScope, UnknownUser
from .models import RevocationRequest

Target = RevocationRequest.Target


def clean_text(value: Any, what: str, *, max_length: int, blank: bool = False) -> str:
    """Return `value` if it is a string the database stores as given; raise InvalidRequest.

    A blank name is refused (unless `blank`): an unset shell variable must never
    widen a target. NUL is refused here because PostgreSQL would refuse it later.
    """
    if not isinstance(value, str):
        raise InvalidRequest(f"{what} must be a string, got {type(value).__name__}")
    if "\x00" in value:
        raise InvalidRequest(f"{what} must not contain NUL characters")
    if len(value) > max_length:
        raise InvalidRequest(f"{what} is {len(value)} characters long; the most is {max_length}")
    if not blank and not value.strip():
        raise InvalidTarget(f"{what} is blank")
    return value


def scope_resolver(name: str) -> Callable[[str], QuerySet[Any]]:
    """Return the resolver registered for scope `name` in REVOCATION_SCOPES."""
    name = clean_text(name, "scope name", max_length=64)
    scopes = app_settings.SCOPES
    if name not in scopes:
        known = ", ".join(sorted(scopes)) or "none configured"
        raise UnknownScope(f"unknown scope {name!r} (REVOCATION_SCOPES has: {known})")
    try:
        return import_string(scopes[name])  # type: ignore[no-any-return]
    except ImportError as exc:
        raise UnknownScope(
            f"REVOCATION_SCOPES[{name!r}] = {scopes[name]!r} cannot be imported: {exc}"
        ) from exc


def check_scope_value(name: str, value: Any) -> str:
    """Return scope `name`'s `value` in the form its resolver uses; raise InvalidTarget if bad."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidTarget(f"scope value must be a string or an integer, got {value!r}")
    text = clean_text(str(value), "scope value", max_length=255)
    resolver = scope_resolver(name)
    clean: Callable[[str], Any] | None = getattr(resolver, "clean", None)
    try:
        if clean is not None:
            return str(clean(text))
        # Building (not running) the queryset makes each lookup prepare the value.
        resolver(text)
    except (ValueError, TypeError, ValidationError) as exc:
        reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        raise InvalidTarget(f"invalid value {text!r} for scope {name!r}: {reason}") from exc
    return text


def check_user_ids(user_ids: Iterable[Any]) -> list[Any]:
    """Return `user_ids` as primary keys, raising UnknownUser for any that do not exist."""
    user_model = get_user_model()
    pk_field = user_model._meta.pk
    assert pk_field is not None  # noqa: S101
    if isinstance(user_ids, str | bytes) or not isinstance(user_ids, Iterable):
        raise InvalidTarget(f"user_ids must be a list of ids, got {user_ids!r}")
    user_ids = list(user_ids)
    for uid in user_ids:
        # True is 1 to Python and to_python(): a flag must never name a user.
        if isinstance(uid, bool) or uid is None or (isinstance(uid, str) and not uid.strip()):
            raise UnknownUser(f"invalid user id: {uid!r}")
    try:
        ids = sorted({pk_field.to_python(uid) for uid in user_ids})
    except Exception as exc:
        raise UnknownUser(f"invalid user id: {exc}") from exc
    if not ids:
        raise InvalidTarget("user_ids is empty")
    found = set(user_model._default_manager.filter(pk__in=ids).values_list("pk", flat=True))
    missing = [uid for uid in ids if uid not in found]
    if missing:
        raise UnknownUser(f"unknown user id(s): {', '.join(str(m) for m in missing)}")
    return ids


def check_group(name: Any) -> str:
    """Return `name` if such a group exists, else raise UnknownGroup."""
    name = clean_text(name, "group name", max_length=150)
    if not Group.objects.filter(name=name).exists():
        raise UnknownGroup(f"unknown group {name!r}")
    return name


def users_of(request: RevocationRequest) -> QuerySet[Any]:
    """Return the queryset of users targeted by `request`."""
    users = get_user_model()._default_manager.all()
    if request.target in (Target.USERS, Target.SESSIONS):
        return users.filter(pk__in=request.user_ids)
    if request.target == Target.GROUP:
        return users.filter(groups__name=request.group_name)
    if request.target == Target.SCOPE:
        member_ids = scope_resolver(request.scope_name)(request.scope_value)
        return users.filter(pk__in=member_ids)
    return users


def fence_keys_of(user: Any) -> list[str]:
    """Return the group and scope fence keys that apply to `user` right now."""
    groups = getattr(user, "groups", None)  # custom user models may have none
    names = groups.values_list("name", flat=True) if groups is not None else []
    keys = [fences.group_key(name) for name in names]
    for name in app_settings.SCOPES:
        resolver = scope_resolver(name)
        scopes_of = getattr(resolver, "scopes_of", None)
        if scopes_of is not None:
            keys += [fences.scope_key(name, value) for value in scopes_of(user.pk)]
    return keys
