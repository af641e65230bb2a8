"""Revocation targets: validation at request time, and the users they resolve to."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.utils.module_loading import import_string

from . import fences
from .app_settings import app_settings
from .exceptions import InvalidTarget, UnknownGroup, UnknownScope, UnknownUser
from .models import RevocationRequest

Target = RevocationRequest.Target


def scope_resolver(name: str) -> Callable[[str], QuerySet[Any]]:
    """Return the resolver registered for scope `name` in REVOCATION_SCOPES."""
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


def check_user_ids(user_ids: Iterable[Any]) -> list[Any]:
    """Return `user_ids` as primary keys, raising UnknownUser for any that do not exist."""
    user_model = get_user_model()
    pk_field = user_model._meta.pk
    assert pk_field is not None  # noqa: S101
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


def check_group(name: str) -> str:
    """Return `name` if such a group exists, else raise UnknownGroup."""
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
