"""Show the state and progress of one revocation request."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils.translation import gettext, gettext_noop

from revocation.exceptions import RequestNotFound
from revocation.selectors import get_request

from ._base import TranslatedCommand
from ._output import emit


class Command(TranslatedCommand):
    help = gettext_noop("Show state, counts, timings and error of a revocation request.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id", help=gettext("revocation request id"))
        parser.add_argument("--json", action="store_true", help=gettext("print one JSON object"))

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            revocation = get_request(options["id"])
        except RequestNotFound as exc:
            raise CommandError(str(exc)) from exc
        emit(self, revocation, as_json=options["json"])
        if not options["json"]:
            started = revocation.started_at.isoformat() if revocation.started_at else "-"
            finished = revocation.finished_at.isoformat() if revocation.finished_at else "-"
            created = revocation.created_at.isoformat()
            self.stdout.write(
                gettext(
                    "  reason: %(reason)s\n  created: %(created)s\n  started: %(started)s"
                    "\n  finished: %(finished)s"
                )
                % {
                    "reason": revocation.reason or "-",
                    "created": created,
                    "started": started,
                    "finished": finished,
                }
            )
