"""Scope resolvers: map a project's own grouping (an organisation, a tenant) to user ids.

Register one per scope name in settings::

    # myproject/scopes.py
    from revocation.scopes import field_resolver
    org_members = field_resolver("orgs.Membership", user_field="user_id", scope_field="org_id")

    # settings.py
    REVOCATION_SCOPES = {"org": "myproject.scopes.org_members"}

Then ``revoke_sessions(scope=("org", 42))`` or ``manage.py revoke_sessions --scope org=42``
logs out every member of organisation 42. A resolver is any callable taking the
scope value (a string) and returning a queryset of user ids; it is evaluated as a
subquery, page by page, so an organisation is never loaded into memory.

A resolver that also has a ``scopes_of(user_id)`` method (``field_resolver`` does)
lets the revocation fence log a whole scope out on its very next request: the
user's scope values are stamped into the session at login.

Values are checked when a request is accepted, never later in the worker: a
resolver may have a ``clean(value) -> str`` method that returns the value in
canonical form or raises ``ValueError``/``ValidationError`` (``field_resolver``
converts with the scope field, so ``"abc"`` for a numeric field is refused);
without one, the resolver is called once to build (not run) its queryset, which
refuses a value its lookup cannot take.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db.models import QuerySet


class FieldResolver:
    """Resolve a scope through a model with a user field and a scope field."""

    def __init__(self, model: str, *, user_field: str, scope_field: str) -> None:
        self.model, self.user_field, self.scope_field = model, user_field, scope_field

    def _rows(self) -> QuerySet[Any]:
        return apps.get_model(self.model)._default_manager.all()

    def clean(self, value: str) -> str:
        """Return `value` as the scope field stores it; raise ValidationError if it cannot be."""
        field = apps.get_model(self.model)._meta.get_field(self.scope_field)
        column = getattr(field, "target_field", field)  # a ForeignKey stores its target's type
        cleaned = column.to_python(value)
        column.run_validators(cleaned)  # e.g. an id beyond the column's integer range
        return str(cleaned)

    def __call__(self, value: str) -> QuerySet[Any]:
        """Return the ids of the users in scope `value`."""
        return self._rows().filter(**{self.scope_field: value}).values(self.user_field)

    def scopes_of(self, user_id: Any) -> list[str]:
        """Return the scope values `user_id` belongs to."""
        values = self._rows().filter(**{self.user_field: user_id})
        return [str(v) for v in values.values_list(self.scope_field, flat=True).distinct()]


def field_resolver(model: str, *, user_field: str, scope_field: str) -> FieldResolver:
    """Return a resolver selecting `user_field` of `model` rows whose `scope_field` is the value."""
    return FieldResolver(model, user_field=user_field, scope_field=scope_field)
