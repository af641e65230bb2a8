"""Revocation targets: who a request logs out, one class per kind.

Each kind checks its input when a request is accepted (never later, in the
worker), stores itself on the `RevocationRequest` row and is loaded back from
it, and knows its users, its fence keys and a description for people.
`parse()` is the one reader of a target for every face (the service, the API,
the dashboard form and the command), with the one "exactly one target" rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group as AuthGroup
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils.module_loading import import_string
from django.utils.translation import gettext, ngettext

from . import fences
from .app_settings import app_settings
from .exceptions import InvalidRequest, InvalidTarget, UnknownGroup, UnknownScope, UnknownUser
from .models import RevocationRequest, UserSession

Kind = RevocationRequest.Target
REASON_MAX_LENGTH = RevocationRequest._meta.get_field("reason").max_length or 255


class Target:
    """One kind of target; subclasses are frozen dataclasses of its stored fields."""

    kind: ClassVar[Kind]
    # Everyone: unmapped sessions (from before the app) are deleted too, on table engines.
    unmapped_too: ClassVar[bool] = False

    @classmethod
    def load(cls, revocation: RevocationRequest) -> Target:
        """Return the target stored on `revocation`."""
        raise NotImplementedError

    def store(self, revocation: RevocationRequest) -> None:
        """Write this target onto `revocation` (not saved)."""
        revocation.target = self.kind

    def users(self) -> QuerySet[Any]:
        """Return the queryset of targeted users."""
        return get_user_model()._default_manager.all()

    def user_ids_after(self, after: Any) -> QuerySet[Any]:
        """Return the targeted users' ids after id `after` (None: from the start), in order."""
        users = self.users()
        if after is not None:
            users = users.filter(pk__gt=after)
        return users.order_by("pk").values_list("pk", flat=True)

    def mappings(self, rows: QuerySet[UserSession]) -> QuerySet[UserSession]:
        """Return the UserSession rows among `rows` (of the target's users) to revoke."""
        return rows

    def fence_keys(self) -> list[str]:
        """Return the fence keys accepting this target sets."""
        raise NotImplementedError

    def describe(self) -> str:
        """Return a short description for people."""
        raise NotImplementedError


@dataclass(frozen=True)
class Users(Target):
    """Some users, by primary key."""

    kind = Kind.USERS
    user_ids: tuple[Any, ...]

    @classmethod
    def load(cls, revocation: RevocationRequest) -> Users:
        return cls(tuple(revocation.user_ids))

    def store(self, revocation: RevocationRequest) -> None:
        super().store(revocation)
        revocation.user_ids = list(self.user_ids)
        revocation.users_total = len(self.user_ids)

    def users(self) -> QuerySet[Any]:
        return super().users().filter(pk__in=self.user_ids)

    def fence_keys(self) -> list[str]:
        return [fences.user_key(uid) for uid in self.user_ids]

    def describe(self) -> str:
        if not self.user_ids:
            # Erased with the request's other personal data (AUDIT_PERSONAL_DATA_DAYS).
            return gettext("users (ids erased)")
        ids = ", ".join(str(i) for i in self.user_ids[:5])
        more = f" +{len(self.user_ids) - 5}" if len(self.user_ids) > 5 else ""
        return gettext("users %(ids)s") % {"ids": ids + more}


@dataclass(frozen=True)
class Sessions(Users):
    """Some sessions (UserSession ids) of one user: a concurrent-session limit."""

    kind = Kind.SESSIONS
    session_ids: tuple[int, ...] = ()

    @classmethod
    def load(cls, revocation: RevocationRequest) -> Sessions:
        return cls(tuple(revocation.user_ids), tuple(revocation.session_ids))

    def store(self, revocation: RevocationRequest) -> None:
        super().store(revocation)
        revocation.session_ids = list(self.session_ids)

    def mappings(self, rows: QuerySet[UserSession]) -> QuerySet[UserSession]:
        return rows.filter(pk__in=self.session_ids)

    def fence_keys(self) -> list[str]:
        # A user fence would end every session of the user, not just these.
        return []

    def describe(self) -> str:
        if not self.user_ids:
            return gettext("sessions of a user (ids erased)")
        count = len(self.session_ids)
        return ngettext(
            "%(count)d session of user %(user)s", "%(count)d sessions of user %(user)s", count
        ) % {"count": count, "user": self.user_ids[0]}


@dataclass(frozen=True)
class Group(Target):
    """Every member of a Django auth group."""

    kind = Kind.GROUP
    name: str

    @classmethod
    def load(cls, revocation: RevocationRequest) -> Group:
        return cls(revocation.group_name)

    def store(self, revocation: RevocationRequest) -> None:
        super().store(revocation)
        revocation.group_name = self.name

    def users(self) -> QuerySet[Any]:
        return super().users().filter(groups__name=self.name)

    def user_ids_after(self, after: Any) -> QuerySet[Any]:
        # From the membership table, by group id, the cursor bounding it there. Joined to
        # auth_group by name, the planner cannot tell the group's size and hash-joins all
        # of its memberships for every page; by id it merge-joins from the group's first
        # member: either way each page cost more than the one before (55 ms a page of
        # 1000 at 100k members, bench/bulk_revoke.py). Unlike users(), this does not go
        # through the user model's default manager: a member it hides is revoked too.
        groups: Any = get_user_model()._meta.get_field("groups")
        through = groups.remote_field.through
        user = through._meta.get_field(groups.m2m_field_name()).attname
        group = through._meta.get_field(groups.m2m_reverse_field_name()).attname
        # None (the group is gone) matches no membership.
        group_id = AuthGroup.objects.filter(name=self.name).values_list("pk", flat=True).first()
        members = through._default_manager.filter(**{group: group_id})
        if after is not None:
            members = members.filter(**{f"{user}__gt": after})
        return members.order_by(user).values_list(user, flat=True)  # type: ignore[no-any-return]

    def fence_keys(self) -> list[str]:
        return [fences.group_key(self.name), fences.SCOPED]

    def describe(self) -> str:
        return gettext("group %(name)s") % {"name": self.name}


@dataclass(frozen=True)
class Scope(Target):
    """Every member of a scope value, resolved by the resolver REVOCATION_SCOPES names."""

    kind = Kind.SCOPE
    name: str
    value: str

    @classmethod
    def load(cls, revocation: RevocationRequest) -> Scope:
        return cls(revocation.scope_name, revocation.scope_value)

    def store(self, revocation: RevocationRequest) -> None:
        super().store(revocation)
        revocation.scope_name, revocation.scope_value = self.name, self.value

    def users(self) -> QuerySet[Any]:
        return super().users().filter(pk__in=scope_resolver(self.name)(self.value))

    def user_ids_after(self, after: Any) -> QuerySet[Any]:
        resolver = scope_resolver(self.name)
        field = getattr(resolver, "user_field", None)  # field_resolver's
        if field is None:
            return super().user_ids_after(after)
        # As for groups: paged on the resolver's own rows, the cursor bounding them there,
        # not on users semi-joined to the whole scope again for every page.
        members = resolver(self.value)
        column = members.model._meta.get_field(field).attname
        if after is not None:
            members = members.filter(**{f"{column}__gt": after})
        # A user with two rows in the scope is one user.
        return members.order_by(column).values_list(column, flat=True).distinct()

    def fence_keys(self) -> list[str]:
        return [fences.scope_key(self.name, self.value), fences.SCOPED]

    def describe(self) -> str:
        return f"{self.name}={self.value}"


@dataclass(frozen=True)
class Everyone(Target):
    """Every user (and, on table engines, every unmapped session too)."""

    kind = Kind.EVERYONE
    unmapped_too = True

    @classmethod
    def load(cls, revocation: RevocationRequest) -> Everyone:
        return cls()

    def fence_keys(self) -> list[str]:
        return [fences.GLOBAL]

    def describe(self) -> str:
        return gettext("everyone")


class Spelling(NamedTuple):
    """How a face names each target in its errors (its parameters, options or fields)."""

    users: str = "user_ids"
    group: str = "group"
    scope: str = "scope"
    everyone: str = "everyone=True"
    flag: str = "everyone"
    scope_example: str = "scope=('org', 42)"


# The service's own keyword arguments.
PYTHON = Spelling()


KINDS: dict[str, type[Target]] = {
    kind.kind: kind for kind in (Users, Sessions, Group, Scope, Everyone)
}


def load(revocation: RevocationRequest) -> Target:
    """Return the target stored on `revocation`; InvalidTarget for a kind this release lacks."""
    kind = KINDS.get(revocation.target)
    if kind is None:
        raise InvalidTarget(gettext("unknown target kind %r") % revocation.target)
    return kind.load(revocation)


def describe(revocation: RevocationRequest) -> str:
    """Return who `revocation` targets, for people (the bare kind if this release lacks it)."""
    kind = KINDS.get(revocation.target)
    return kind.load(revocation).describe() if kind is not None else str(revocation.target)


def parse(
    *,
    user_ids: Any = None,
    users: Any = None,
    usernames: Any = None,
    group: Any = None,
    scope: Any = None,
    everyone: Any = False,
    spelling: Spelling = PYTHON,
) -> Target:
    """Return the one target given, checked; raise an InvalidRequest subclass otherwise.

    `user_ids` are primary keys; `users` are usernames or (ASCII-digit) ids, as
    people type them; `usernames` are usernames only; `scope` is a (name, value)
    pair. Everyone is reached only by `everyone=True`: a blank group, scope, value
    or user is an error, never a wider target. Errors name the targets as
    `spelling` says the caller does.
    """
    if not isinstance(everyone, bool):
        raise InvalidTarget(
            gettext("%(flag)s must be True or False, got %(value)r")
            % {"flag": spelling.flag, "value": everyone}
        )
    given = [x is not None for x in (user_ids, users, usernames, group, scope)] + [everyone]
    if sum(given) != 1:
        raise InvalidTarget(
            gettext("give exactly one target: %(users)s, %(group)s, %(scope)s or %(everyone)s")
            % spelling._asdict()
        )
    if user_ids is not None:
        return Users(tuple(check_user_ids(user_ids)))
    if users is not None or usernames is not None:
        named = users if users is not None else usernames
        # user_ids_of() returns only ids it found: no second existence query.
        ids = user_ids_of(named, what=spelling.users, ids_too=users is not None)
        return Users(tuple(sorted(set(ids))))
    if group is not None:
        return Group(check_group(group))
    if scope is not None:
        if not (isinstance(scope, tuple | list) and len(scope) == 2):
            raise InvalidTarget(gettext("scope must be a (name, value) pair, got %r") % (scope,))
        name, value = scope
        if name is None or value is None:
            raise InvalidTarget(
                gettext("scope and value go together, e.g. %(example)s")
                % {"example": spelling.scope_example}
            )
        name = clean_text(name, gettext("scope name"), max_length=64)
        return Scope(name, check_scope_value(name, value))
    return Everyone()


def clean_text(value: Any, what: str, *, max_length: int, blank: bool = False) -> str:
    """Return `value` if it is a string the database stores as given; raise InvalidRequest.

    A blank name is refused (unless `blank`): an unset shell variable must never
    widen a target. NUL is refused here because PostgreSQL would refuse it later.
    """
    if not isinstance(value, str):
        raise InvalidRequest(
            gettext("%(what)s must be a string, got %(type)s")
            % {"what": what, "type": type(value).__name__}
        )
    if "\x00" in value:
        raise InvalidRequest(gettext("%(what)s must not contain NUL characters") % {"what": what})
    if len(value) > max_length:
        raise InvalidRequest(
            gettext("%(what)s is %(length)d characters long; the most is %(max)d")
            % {"what": what, "length": len(value), "max": max_length}
        )
    if not blank and not value.strip():
        raise InvalidTarget(gettext("%(what)s is blank") % {"what": what})
    return value


def clean_reason(reason: Any) -> str:
    """Return `reason` if the audit log can keep it whole; raise InvalidRequest otherwise."""
    return clean_text(reason, gettext("reason"), max_length=REASON_MAX_LENGTH, blank=True)


def scope_resolver(name: str) -> Callable[[str], QuerySet[Any]]:
    """Return the resolver registered for scope `name` in REVOCATION_SCOPES."""
    name = clean_text(name, gettext("scope name"), max_length=64)
    scopes = app_settings.SCOPES
    if name not in scopes:
        known = ", ".join(sorted(scopes)) or gettext("none configured")
        raise UnknownScope(
            gettext("unknown scope %(name)r (REVOCATION_SCOPES has: %(known)s)")
            % {"name": name, "known": known}
        )
    try:
        return import_string(scopes[name])  # type: ignore[no-any-return]
    except ImportError as exc:
        raise UnknownScope(
            gettext("REVOCATION_SCOPES[%(name)r] = %(path)r cannot be imported: %(error)s")
            % {"name": name, "path": scopes[name], "error": exc}
        ) from exc


def check_scope_value(name: str, value: Any) -> str:
    """Return scope `name`'s `value` in the form its resolver uses; raise InvalidTarget if bad."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidTarget(
            gettext("scope value must be a string or an integer, got %r") % (value,)
        )
    text = clean_text(str(value), gettext("scope value"), max_length=255)
    resolver = scope_resolver(name)
    clean: Callable[[str], Any] | None = getattr(resolver, "clean", None)
    try:
        if clean is not None:
            return str(clean(text))
        # Building (not running) the queryset makes each lookup prepare the value.
        resolver(text)
    except (ValueError, TypeError, ValidationError) as exc:
        reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        raise InvalidTarget(
            gettext("invalid value %(value)r for scope %(name)r: %(reason)s")
            % {"value": text, "name": name, "reason": reason}
        ) from exc
    return text


def user_ids_of(users: Any, *, what: str = "users", ids_too: bool = True) -> list[Any]:
    """Return the ids of the users named in `users` (or numbered: ASCII digits, if `ids_too`).

    Raises UnknownUser naming every value that is neither.
    """
    if isinstance(users, str | bytes) or not isinstance(users, Iterable):
        raise InvalidTarget(
            gettext("%(what)s must be a list of usernames or ids, got %(value)r")
            % {"what": what, "value": users}
        )
    names = [clean_text(u, what, max_length=255, blank=True) for u in users]
    if not names:
        raise InvalidTarget(gettext("name at least one user"))
    user_model = get_user_model()
    rows = user_model._default_manager.filter(**{f"{user_model.USERNAME_FIELD}__in": names})
    found = {str(name): pk for name, pk in rows.values_list(user_model.USERNAME_FIELD, "pk")}
    # isdigit() alone accepts "١٢" and "²": only ASCII digits are an id.
    numbers = [n for n in names if ids_too and n not in found and n.isascii() and n.isdigit()]
    existing = set(user_model._default_manager.filter(pk__in=numbers).values_list("pk", flat=True))
    found.update({n: int(n) for n in numbers if int(n) in existing})
    missing = [n for n in names if n not in found]
    if missing:
        listed = ", ".join(map(repr, missing))
        if ids_too:
            raise UnknownUser(
                gettext("unknown user %(names)s: no such username or id") % {"names": listed}
            )
        raise UnknownUser(gettext("unknown user %(names)s: no such username") % {"names": listed})
    return [found[n] for n in names]


def check_user_ids(user_ids: Any) -> list[Any]:
    """Return `user_ids` as primary keys, raising UnknownUser for any that do not exist."""
    user_model = get_user_model()
    pk_field = user_model._meta.pk
    assert pk_field is not None  # noqa: S101
    if isinstance(user_ids, str | bytes) or not isinstance(user_ids, Iterable):
        raise InvalidTarget(gettext("user_ids must be a list of ids, got %r") % (user_ids,))
    user_ids = list(user_ids)
    for uid in user_ids:
        # True is 1 to Python and to_python(): a flag must never name a user.
        if isinstance(uid, bool) or uid is None or (isinstance(uid, str) and not uid.strip()):
            raise UnknownUser(gettext("invalid user id: %r") % (uid,))
    try:
        ids = sorted({pk_field.to_python(uid) for uid in user_ids})
    except Exception as exc:
        raise UnknownUser(gettext("invalid user id: %s") % exc) from exc
    if not ids:
        raise InvalidTarget(gettext("user_ids is empty"))
    found = set(user_model._default_manager.filter(pk__in=ids).values_list("pk", flat=True))
    missing = [uid for uid in ids if uid not in found]
    if missing:
        raise UnknownUser(
            gettext("unknown user id(s): %(ids)s") % {"ids": ", ".join(str(m) for m in missing)}
        )
    return ids


def check_group(name: Any) -> str:
    """Return `name` if such a group exists, else raise UnknownGroup."""
    name = clean_text(name, gettext("group name"), max_length=150)
    if not AuthGroup.objects.filter(name=name).exists():
        raise UnknownGroup(gettext("unknown group %r") % (name,))
    return name


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
