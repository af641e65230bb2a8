"""Show the state and progress of one revocation request."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from revocation.exceptions import RequestNotFound
from revocation.selectors import get_request

from ._output import emit


class Command(BaseCommand):
    help = "Show state, counts, timings and error of a revocation request."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id", help="revocation request id")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

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
                f"  reason: {revocation.reason or '-'}\n  created: {created}"
                f"\n  started: {started}\n  finished: {finished}"
            )
