"""The staff dashboard's "start a revocation" form."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from . import selectors
from .app_settings import app_settings

TARGETS = [
    ("users", "Users"),
    ("group", "A group"),
    ("scope", "A scope"),
    ("everyone", "Everyone"),
]


class RevocationForm(forms.Form):
    """Who to log out and why; `target_kwargs()` gives services.revoke_sessions() arguments."""

    target = forms.ChoiceField(choices=TARGETS, widget=forms.RadioSelect, initial="users")
    usernames = forms.CharField(
        required=False,
        max_length=10_000,
        help_text="Usernames separated by spaces or commas.",
    )
    group = forms.CharField(required=False, max_length=150, help_text="Group name.")
    scope = forms.ChoiceField(required=False, choices=())
    value = forms.CharField(required=False, max_length=255, help_text="e.g. an organisation id.")
    reason = forms.CharField(
        max_length=255, help_text="Kept in the audit log, e.g. “account compromised”."
    )
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        scope_field = self.fields["scope"]
        assert isinstance(scope_field, forms.ChoiceField)  # noqa: S101
        scope_field.choices = [("", "—")] + [(name, name) for name in sorted(app_settings.SCOPES)]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        target = data.get("target")
        if target == "users":
            names = [n for n in re.split(r"[\s,]+", data.get("usernames", "")) if n]
            if not names:
                self.add_error("usernames", "Name at least one user.")
            else:
                found = selectors.user_ids_by_username(names)
                missing = [n for n in names if n not in found]
                if missing:
                    self.add_error("usernames", f"Unknown user(s): {', '.join(missing)}")
                data["user_ids"] = sorted(set(found.values()))
        elif target == "group" and not data.get("group"):
            self.add_error("group", "Name a group.")
        elif target == "scope":
            if not data.get("scope"):
                self.add_error("scope", "Choose a scope.")
            if not data.get("value"):
                self.add_error("value", "Give the scope's value.")
        return data

    def target_kwargs(self) -> dict[str, Any]:
        """Return the target as keyword arguments of services.revoke_sessions()."""
        data = self.cleaned_data
        target = data["target"]
        if target == "users":
            return {"user_ids": data["user_ids"]}
        if target == "group":
            return {"group": data["group"]}
        if target == "scope":
            return {"scope": (data["scope"], data["value"])}
        return {"everyone": True}

    def needs_confirmation(self) -> bool:
        """Return whether this is an everyone-revocation not yet confirmed."""
        return self.cleaned_data["target"] == "everyone" and not self.cleaned_data.get("confirm")
