"""The staff dashboard's "start a revocation" form."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils.translation import gettext, gettext_lazy

from . import services
from .app_settings import app_settings
from .exceptions import InvalidRequest

TARGETS = [
    ("users", gettext_lazy("Users")),
    ("group", gettext_lazy("A group")),
    ("scope", gettext_lazy("A scope")),
    ("everyone", gettext_lazy("Everyone")),
]


# The field an error in each kind of target belongs to, and the targets as the form names them.
FIELD_OF = {"users": "usernames", "group": "group", "scope": "value"}
FIELDS = services.Spelling(
    users="usernames", group="group", scope="scope", everyone="everyone", flag="everyone"
)


class RevocationForm(forms.Form):
    """Who to log out and why; once valid, `parsed` is the target (from targets.parse())."""

    parsed: services.Target

    target = forms.ChoiceField(choices=TARGETS, widget=forms.RadioSelect, initial="users")
    usernames = forms.CharField(
        required=False,
        max_length=10_000,
        help_text=gettext_lazy("Usernames separated by spaces or commas."),
    )
    group = forms.CharField(required=False, max_length=150, help_text=gettext_lazy("Group name."))
    scope = forms.ChoiceField(required=False, choices=())
    value = forms.CharField(
        required=False, max_length=255, help_text=gettext_lazy("e.g. an organisation id.")
    )
    reason = forms.CharField(
        max_length=255, help_text=gettext_lazy("Kept in the audit log, e.g. “account compromised”.")
    )
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        scope_field = self.fields["scope"]
        assert isinstance(scope_field, forms.ChoiceField)  # noqa: S101
        scope_field.choices = [("", "—")] + [(name, name) for name in sorted(app_settings.SCOPES)]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("target")
        if kind == "scope" and not data.get("scope"):
            self.add_error("scope", gettext("Choose a scope."))
            return data
        if kind is None or any(name in self.errors for name in FIELD_OF.values()):
            return data  # a field of the target already failed its own checks
        names = [n for n in re.split(r"[\s,]+", data.get("usernames", "")) if n]
        try:
            self.parsed = services.parse_target(
                usernames=names if kind == "users" else None,
                group=data.get("group", "") if kind == "group" else None,
                scope=(data["scope"], data.get("value", "")) if kind == "scope" else None,
                everyone=kind == "everyone",
                spelling=FIELDS,
            )
        except InvalidRequest as exc:
            self.add_error(FIELD_OF.get(kind), str(exc))
        return data

    def needs_confirmation(self) -> bool:
        """Return whether this is an everyone-revocation not yet confirmed."""
        return self.cleaned_data["target"] == "everyone" and not self.cleaned_data.get("confirm")
