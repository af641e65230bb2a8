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
            request = get_request(options["id"])
        except RequestNotFound as exc:
            raise CommandError(str(exc)) from exc
        emit(self, request, as_json=options["json"])
        if not options["json"]:
            started = request.started_at.isoformat() if request.started_at else "-"
            finished = request.finished_at.isoformat() if request.finished_at else "-"
            self.stdout.write(
                f"  reason: {request.reason or '-'}\n  created: {request.created_at.isoformat()}"
                f"\n  started: {started}\n  finished: {finished}"
            )
