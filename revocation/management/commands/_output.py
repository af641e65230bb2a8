"""Shared pieces of the revocation commands: JSON output and progress while waiting."""

from __future__ import annotations

import json
import sys
import time
from typing import IO, Any

from django.utils.translation import gettext
from tqdm import tqdm

from revocation.models import RevocationRequest
from revocation.selectors import describe_target, get_request, request_summary


def json_line(revocation: RevocationRequest) -> str:
    """Return the one-line JSON status of `revocation`."""
    return json.dumps(request_summary(revocation), sort_keys=True)


def describe(revocation: RevocationRequest) -> str:
    """Return a one-line human status of `revocation`."""
    values = {
        "id": revocation.pk,
        "state": revocation.get_state_display(),
        "target": describe_target(revocation),
        "done": revocation.users_done,
        "total": revocation.users_total,
        "sessions": revocation.sessions_revoked,
        "error": revocation.error,
    }
    if revocation.error:
        return (
            gettext(
                "Revocation #%(id)s %(state)s: %(target)s, users %(done)d/%(total)d, "
                "sessions revoked %(sessions)d; error: %(error)s"
            )
            % values
        )
    return (
        gettext(
            "Revocation #%(id)s %(state)s: %(target)s, users %(done)d/%(total)d, "
            "sessions revoked %(sessions)d"
        )
        % values
    )


def wait(request_id: int, *, stream: IO[str] = sys.stderr, poll: float = 0.5) -> RevocationRequest:
    """Poll `request_id` until it finishes, showing progress on `stream`."""
    revocation = get_request(request_id)
    if stream.isatty():
        return _wait_with_bar(revocation, stream, poll)
    last = ""
    while True:
        line = describe(revocation)
        if line != last:
            stream.write(line + "\n")
            stream.flush()
            last = line
        if revocation.is_finished:
            return revocation
        time.sleep(poll)
        revocation.refresh_from_db()


def _wait_with_bar(
    revocation: RevocationRequest, stream: IO[str], poll: float
) -> RevocationRequest:
    """Show a progress bar of users done (with rate and ETA) until `revocation` finishes."""
    with tqdm(
        total=revocation.users_total or None, unit="user", file=stream, dynamic_ncols=True
    ) as bar:
        while True:
            bar.total = revocation.users_total or None
            bar.update(revocation.users_done - bar.n)
            bar.set_postfix_str(
                gettext("%(sessions)d sessions revoked, %(state)s")
                % {"sessions": revocation.sessions_revoked, "state": revocation.get_state_display()}
            )
            if revocation.is_finished:
                return revocation
            time.sleep(poll)
            revocation.refresh_from_db()


def emit(command: Any, revocation: RevocationRequest, *, as_json: bool) -> None:
    """Write the final status: JSON as the last stdout line, or a human line."""
    command.stdout.write(json_line(revocation) if as_json else describe(revocation))
