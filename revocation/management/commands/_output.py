"""Shared pieces of the revocation commands: JSON output and progress while waiting."""

from __future__ import annotations

import json
import sys
import time
from typing import IO, Any

from tqdm import tqdm

from revocation.models import RevocationRequest
from revocation.selectors import describe_target, get_request, request_summary


def json_line(revocation: RevocationRequest) -> str:
    """Return the one-line JSON status of `revocation`."""
    return json.dumps(request_summary(revocation), sort_keys=True)


def describe(revocation: RevocationRequest) -> str:
    """Return a one-line human status of `revocation`."""
    line = (
        f"Revocation #{revocation.pk} {revocation.state}: {describe_target(revocation)}, "
        f"users {revocation.users_done}/{revocation.users_total}, "
        f"sessions revoked {revocation.sessions_revoked}"
    )
    return f"{line}; error: {revocation.error}" if revocation.error else line


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
                f"{revocation.sessions_revoked} sessions revoked, {revocation.state}"
            )
            if revocation.is_finished:
                return revocation
            time.sleep(poll)
            revocation.refresh_from_db()


def emit(command: Any, revocation: RevocationRequest, *, as_json: bool) -> None:
    """Write the final status: JSON as the last stdout line, or a human line."""
    command.stdout.write(json_line(revocation) if as_json else describe(revocation))
