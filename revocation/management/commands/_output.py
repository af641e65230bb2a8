"""Shared pieces of the revocation commands: JSON output and progress while waiting."""

from __future__ import annotations

import json
import sys
import time
from typing import IO, Any

from tqdm import tqdm

from revocation import targets
from revocation.models import RevocationRequest
from revocation.selectors import get_request, request_summary


def json_line(request: RevocationRequest) -> str:
    """Return the one-line JSON status of `request`."""
    return json.dumps(request_summary(request), sort_keys=True)


def describe(request: RevocationRequest) -> str:
    """Return a one-line human status of `request`."""
    line = (
        f"Revocation #{request.pk} {request.state}: {targets.describe(request)}, "
        f"users {request.users_done}/{request.users_total}, "
        f"sessions revoked {request.sessions_revoked}"
    )
    return f"{line}; error: {request.error}" if request.error else line


def wait(request_id: int, *, stream: IO[str] = sys.stderr, poll: float = 0.5) -> RevocationRequest:
    """Poll `request_id` until it finishes, showing progress on `stream`."""
    request = get_request(request_id)
    if stream.isatty():
        return _wait_with_bar(request, stream, poll)
    last = ""
    while True:
        line = describe(request)
        if line != last:
            stream.write(line + "\n")
            stream.flush()
            last = line
        if request.is_finished:
            return request
        time.sleep(poll)
        request.refresh_from_db()


def _wait_with_bar(request: RevocationRequest, stream: IO[str], poll: float) -> RevocationRequest:
    """Show a progress bar of users done (with rate and ETA) until `request` finishes."""
    with tqdm(
        total=request.users_total or None, unit="user", file=stream, dynamic_ncols=True
    ) as bar:
        while True:
            bar.total = request.users_total or None
            bar.update(request.users_done - bar.n)
            bar.set_postfix_str(f"{request.sessions_revoked} sessions revoked, {request.state}")
            if request.is_finished:
                return request
            time.sleep(poll)
            request.refresh_from_db()


def emit(command: Any, request: RevocationRequest, *, as_json: bool) -> None:
    """Write the final status: JSON as the last stdout line, or a human line."""
    command.stdout.write(json_line(request) if as_json else describe(request))
