"""Link sessions that existed before the app was installed to their users."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils.translation import gettext, gettext_noop

from revocation import services
from revocation.app_settings import app_settings
from revocation.exceptions import InvalidRequest

from ._base import TranslatedCommand


class Command(TranslatedCommand):
    help = gettext_noop(
        "Create UserSession rows for existing logged-in sessions, decoding them in keyset "
        "batches (constant memory; safe to stop and rerun, or resume with --after)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch", type=int, default=app_settings.BATCH_SIZE, help=gettext("sessions per batch")
        )
        parser.add_argument(
            "--after", default="", metavar="KEY", help=gettext("resume after this session key")
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch"] < 1:
            raise CommandError(
                gettext("--batch must be at least 1, got %(batch)s") % {"batch": options["batch"]}
            )
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
                gettext("batch %(page)d: linked %(count)d, resume with --after %(cursor)s")
                % {"page": scanned_pages, "count": count, "cursor": cursor}
            )
        # "Label: number": right in every language whatever the numbers.
        self.stdout.write(
            gettext(
                "Backfill done in %(seconds).1f s. Sessions linked: %(linked)d; batches: %(pages)d."
            )
            % {"linked": linked, "pages": scanned_pages, "seconds": time.monotonic() - started}
        )
