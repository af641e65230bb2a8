"""Log users out: some users, a group, a scope, or everyone."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils.translation import gettext, gettext_noop

from revocation import services
from revocation.exceptions import InvalidRequest

from ._base import TranslatedCommand
from ._output import emit, wait

# Targets named as the command line names them, in error messages.
OPTIONS = services.Spelling(
    users="--user",
    group="--group",
    scope="--scope",
    everyone="--all",
    flag="--all",
    scope_example="--scope org=42",
)


class Command(TranslatedCommand):
    help = gettext_noop(
        "Revoke the sessions of users, a group, a scope or everyone (runs on the workers)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument(
            "--user", action="append", metavar="U", help=gettext("username or id (repeatable)")
        )
        target.add_argument("--group", metavar="NAME", help=gettext("every member of this group"))
        target.add_argument("--scope", metavar="NAME=VALUE", help=gettext("a scope, e.g. org=42"))
        target.add_argument(
            "--all", action="store_true", help=gettext("every session of every user")
        )
        parser.add_argument("--reason", default="", help=gettext("recorded in the audit log"))
        parser.add_argument("--wait", action="store_true", help=gettext("wait and show progress"))
        parser.add_argument(
            "--json", action="store_true", help=gettext("print one JSON object last")
        )
        parser.add_argument(
            "--no-input",
            "--noinput",
            "--yes",
            action="store_false",
            dest="interactive",
            help=gettext("do not ask for confirmation of --all"),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["all"] and options["interactive"]:
            self._confirm_all()
        try:
            target = services.parse_target(
                users=options["user"],
                group=options["group"],
                scope=self._scope(options["scope"]),
                everyone=options["all"],
                spelling=OPTIONS,
            )
            revocation = services.revoke(target, reason=options["reason"])
        except InvalidRequest as exc:
            raise CommandError(str(exc)) from exc
        if options["wait"]:
            revocation = wait(revocation.pk, stream=self.stderr)  # type: ignore[arg-type]
        emit(self, revocation, as_json=options["json"])
        if revocation.state == revocation.State.FAILED:
            raise CommandError(
                gettext("revocation #%(id)s failed: %(error)s")
                % {"id": revocation.pk, "error": revocation.error}
            )

    def _scope(self, text: str | None) -> tuple[str, str] | None:
        """Return `--scope NAME=VALUE` as a (name, value) pair."""
        if text is None:
            return None
        name, sep, value = text.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise CommandError(gettext("--scope must look like NAME=VALUE, got %r") % (text,))
        return name, value

    def _confirm_all(self) -> None:
        """Ask before logging out everyone."""
        try:
            answer = input(gettext("This logs out EVERY user. Type 'yes' to continue: "))
        except EOFError:
            answer = ""
        if answer.strip().lower() != "yes":
            raise CommandError(gettext("aborted: --all was not confirmed (use --no-input to skip)"))
