"""The app's settings: `REVOCATION_*` in Django settings, else the environment, else a default."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings


def _get(name: str, default: Any) -> Any:
    """Return setting `name`, re-read on every access so override_settings works."""
    if hasattr(settings, name):
        return getattr(settings, name)
    raw = os.environ.get(name)
    if raw is None:
        return default
    return type(default)(raw) if isinstance(default, int) else raw


class AppSettings:
    """Typed view of the REVOCATION_* settings."""

    @property
    def BATCH_SIZE(self) -> int:
        """Rows handled per batch (and per transaction) by every bulk delete."""
        return int(_get("REVOCATION_BATCH_SIZE", 1000))

    @property
    def SWEEP_INTERVAL(self) -> int:
        """Seconds between two runs of the outbox sweeper."""
        # With STALL_TIMEOUT: a dead worker's job resumes within 60 + 15 s.
        return int(_get("REVOCATION_SWEEP_INTERVAL", 15))

    @property
    def STALL_TIMEOUT(self) -> int:
        """Seconds without progress after which a request is enqueued again."""
        # Every page commits progress, and a page takes well under a second at the
        # default batch size; a job that is only slow gets a harmless duplicate task.
        return int(_get("REVOCATION_STALL_TIMEOUT", 60))

    @property
    def PAGE_BUDGET_SECONDS(self) -> int:
        """Seconds one task revokes pages before it hands the rest of the job to a new task."""
        # Well below the broker's visibility timeout: a task that runs longer is redelivered.
        return int(_get("REVOCATION_PAGE_BUDGET_SECONDS", 20))

    @property
    def TOUCH_INTERVAL(self) -> int:
        """Seconds between two last-seen updates of one session."""
        return int(_get("REVOCATION_TOUCH_INTERVAL", 300))

    @property
    def TRUSTED_PROXY_COUNT(self) -> int:
        """Number of reverse proxies in front of Django that append to X-Forwarded-For."""
        return int(_get("REVOCATION_TRUSTED_PROXY_COUNT", 0))

    @property
    def MAX_SESSIONS_PER_USER(self) -> int:
        """Concurrent sessions allowed per user; 0 means unlimited."""
        return int(_get("REVOCATION_MAX_SESSIONS_PER_USER", 0))

    @property
    def MAX_SESSIONS_POLICY(self) -> str:
        """What a login beyond the limit does: "revoke_oldest" or "refuse"."""
        return str(_get("REVOCATION_MAX_SESSIONS_POLICY", "revoke_oldest"))

    @property
    def SCOPES(self) -> dict[str, str]:
        """Scope name -> dotted path of a callable returning a user-id queryset."""
        return dict(_get("REVOCATION_SCOPES", {}))

    @property
    def REQUEST_RETENTION_DAYS(self) -> int:
        """Days finished revocation requests are kept for audit."""
        return int(_get("REVOCATION_REQUEST_RETENTION_DAYS", 90))

    @property
    def MAINTENANCE_BATCH_SIZE(self) -> int:
        """Rows per batch (and per transaction) of clearsessions and the orphan prune."""
        return int(_get("REVOCATION_MAINTENANCE_BATCH_SIZE", 10000))

    @property
    def LOCK_BACKEND(self) -> str:
        """Lock keeping maintenance to one run at a time: auto, postgresql, sqlite, redis, cache."""
        return str(_get("REVOCATION_LOCK_BACKEND", "auto"))

    @property
    def OWNER_CHECK_ROWS(self) -> int:
        """Mapping rows whose session owner each orphan prune verifies (decoding); 0 disables."""
        return int(_get("REVOCATION_OWNER_CHECK_ROWS", 20000))

    @property
    def API_WRITE_RATE(self) -> str:
        """Revocations one user may start through the API, e.g. "20/min"."""
        return str(_get("REVOCATION_API_WRITE_RATE", "20/min"))

    @property
    def API_READ_RATE(self) -> str:
        """Reads of revocation status one user may make through the API, e.g. "600/min"."""
        return str(_get("REVOCATION_API_READ_RATE", "600/min"))


app_settings = AppSettings()
