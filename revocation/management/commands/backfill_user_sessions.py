"""Link sessions that existed before the app was installed to their users."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from revocation import services
from revocation.app_settings import app_settings
from revocation.exceptions import InvalidRequest


class Command(BaseCommand):
    help = (
        "Create UserSession rows for existing logged-in sessions, decoding them in keyset "
        "batches (constant memory; safe to stop and rerun, or resume with --after)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=app_settings.BATCH_SIZE)
        parser.add_argument(
            "--after", default="", metavar="KEY", help="resume after this session key"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch"] < 1:
            raise CommandError(f"--batch must be at least 1, got {options['batch']}")
        cursor: str | None = options["after"]
        linked = scanned_pages = 0
        started = time.monotonic()
        while cursor is not None:
            try:
                cursor, count = services.backfill_page(after=cursor, batch=options["batch"])
            except InvalidRequest as exc:
                raise CommandError(str(exc)) from exc
            if cursor is None:
                break
            linked += count
            scanned_pages += 1
            # Printed per batch so an interrupted run can be resumed with --after.
            self.stderr.write(
                f"batch {scanned_pages}: linked {count}, resume with --after {cursor}"
            )
        self.stdout.write(
            f"Backfill done: {linked} sessions linked in {scanned_pages} batches, "
            f"{time.monotonic() - started:.1f}s."
        )
