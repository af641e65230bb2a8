"""Log users out: some users, a group, a scope, or everyone."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from revocation import services
from revocation.exceptions import InvalidRequest

from ._output import emit, wait


class Command(BaseCommand):
    help = "Revoke the sessions of users, a group, a scope or everyone (runs on the workers)."

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument(
            "--user", action="append", metavar="U", help="username or id (repeatable)"
        )
        target.add_argument("--group", metavar="NAME", help="every member of this group")
        target.add_argument("--scope", metavar="NAME=VALUE", help="a scope, e.g. org=42")
        target.add_argument("--all", action="store_true", help="every session of every user")
        parser.add_argument("--reason", default="", help="recorded in the audit log")
        parser.add_argument("--wait", action="store_true", help="wait and show progress")
        parser.add_argument("--json", action="store_true", help="print one JSON object last")
        parser.add_argument(
            "--no-input",
            "--noinput",
            "--yes",
            action="store_false",
            dest="interactive",
            help="do not ask for confirmation of --all",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        target = self._target(options)
        if options["all"] and options["interactive"]:
            self._confirm_all()
        try:
            request = services.revoke_sessions(**target, reason=options["reason"])
        except InvalidRequest as exc:
            raise CommandError(str(exc)) from exc
        if options["wait"]:
            request = wait(request.pk, stream=self.stderr)  # type: ignore[arg-type]
        emit(self, request, as_json=options["json"])
        if request.state == request.State.FAILED:
            raise CommandError(f"revocation #{request.pk} failed: {request.error}")

    def _target(self, options: dict[str, Any]) -> dict[str, Any]:
        """Turn the command-line target into revoke_sessions() keyword arguments."""
        # `is not None`, not truthiness: `--group ""` (an unset shell variable) must be an
        # error, never a fall-through to everyone.
        if options["user"] is not None:
            return {"user_ids": [self._user_id(u) for u in options["user"]]}
        if options["group"] is not None:
            return {"group": options["group"]}
        if options["scope"] is not None:
            name, sep, value = options["scope"].partition("=")
            if not sep or not name.strip() or not value.strip():
                raise CommandError(f"--scope must look like NAME=VALUE, got {options['scope']!r}")
            return {"scope": (name, value)}
        if options["all"]:
            return {"everyone": True}
        raise CommandError("give --user, --group, --scope or --all")

    def _user_id(self, value: str) -> Any:
        """Return the id of the user named or numbered `value`."""
        users = get_user_model()._default_manager
        if "\x00" in value:
            raise CommandError("--user must not contain NUL characters")
        user = users.filter(**{get_user_model().USERNAME_FIELD: value}).first()
        # isdigit() alone accepts "١٢" and "²": only ASCII digits are an id.
        if user is None and value.isascii() and value.isdigit():
            user = users.filter(pk=int(value)).first()
        if user is None:
            raise CommandError(f"unknown user {value!r}: no such username or id")
        return user.pk

    def _confirm_all(self) -> None:
        """Ask before logging out everyone."""
        try:
            answer = input("This logs out EVERY user. Type 'yes' to continue: ")
        except EOFError:
            answer = ""
        if answer.strip().lower() != "yes":
            raise CommandError("aborted: --all was not confirmed (use --no-input to skip)")
