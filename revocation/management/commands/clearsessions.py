"""Our clearsessions: batched, constant memory, and it prunes orphaned mappings too.

It shadows django.contrib.sessions' command of the same name as long as
`revocation` comes before `django.contrib.sessions` in INSTALLED_APPS
(Django takes the first app that has a command; check revocation.W003).
"""

from __future__ import annotations

import json
import time
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.db import DatabaseError
from django.utils.translation import gettext, gettext_noop

from revocation import maintenance

from ._base import TranslatedCommand


class Command(TranslatedCommand):
    help = gettext_noop(
        "Delete expired sessions in batches (constant memory, short transactions), then "
        "prune orphaned user-session mappings and old finished revocation requests."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            metavar="N",
            help=gettext(
                "rows per batch and transaction (default: REVOCATION_MAINTENANCE_BATCH_SIZE)"
            ),
        )
        parser.add_argument(
            "--verify-owners",
            action="store_true",
            help=gettext(
                "decode every mapped session and fix mappings that name the wrong user (slow)"
            ),
        )
        parser.add_argument(
            "--json", action="store_true", help=gettext("print one JSON object last")
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = options["batch_size"]
        if batch_size is not None and batch_size < 1:
            raise CommandError(
                gettext("--batch-size must be a positive integer, got %(value)s")
                % {"value": batch_size}
            )
        verbose = options["verbosity"] > 0
        if verbose:
            for note in maintenance.engine_notes():
                self.stderr.write(note)
        try:
            summary = maintenance.clearsessions(
                batch_size=batch_size,
                verify_owners=options["verify_owners"],
                progress=self._progress() if verbose else None,
            )
        except NotImplementedError as exc:
            # Django's own clearsessions says exactly this (and exits non-zero).
            raise CommandError(
                gettext("Session engine '%(engine)s' doesn't support clearing expired sessions.")
                % {"engine": settings.SESSION_ENGINE}
            ) from exc
        except DatabaseError as exc:
            raise CommandError(gettext("clearsessions failed: %(error)s") % {"error": exc}) from exc
        if options["json"]:
            self.stdout.write(json.dumps(summary.as_dict(), sort_keys=True))
        elif summary.skipped:
            self.stdout.write(
                gettext("Skipped: another clearsessions run holds the %(lock)s lock.")
                % {"lock": maintenance.lock_name()}
            )
        else:
            self.stdout.write(
                gettext(
                    "Deleted %(sessions)d expired sessions, pruned %(mappings)d orphaned "
                    "mappings (%(relinked)d relinked to their real user), %(requests)d "
                    "finished requests and %(fences)d expired fences, and erased the personal "
                    "data of %(erased)d finished requests in %(seconds).1f s."
                )
                % {
                    "sessions": summary.sessions_deleted,
                    "mappings": summary.mappings_pruned,
                    "relinked": summary.mappings_relinked,
                    "requests": summary.requests_pruned,
                    "fences": summary.fences_pruned,
                    "erased": summary.requests_erased,
                    "seconds": summary.seconds,
                }
            )

    def _progress(self) -> maintenance.Progress:
        """Return a progress callback that writes at most one line a second per phase."""
        last: dict[str, float] = {}

        def report(phase: str, done: int) -> None:
            now = time.monotonic()
            if now - last.get(phase, 0.0) >= 1.0:
                last[phase] = now
                self.stderr.write(f"  {maintenance.PHASES.get(phase, phase)}: {done}")

        return report
