"""Writes, one module per concern; the names of the public contract are re-exported here.

- `links`: the user-to-session link (UserSession rows) and the sign-in stamps;
- `revocations`: accepting a revocation (its row, fences and publish), ending sessions now;
- `notices`: the e-mail about a sign-in from a new device or country;
- `outbox`: publishing the work to Celery, and the sweeper that re-publishes;
- `jobs`: carrying a request out, page by page, on a worker;
- `backfill`: linking the sessions that existed before the app was installed.
"""

from ..targets import Spelling, Target
from ..targets import parse as parse_target
from .backfill import backfill_page
from .jobs import fail_request, run_request
from .links import ensure_login_id, link_session, stamp_sign_in, touch_session
from .notices import notify_new_sign_in
from .outbox import hand_on
from .outbox import sweep as sweep_outbox
from .revocations import (
    Ended,
    end_session,
    end_sessions,
    end_sign_in,
    limit_sessions,
    revoke,
    revoke_sessions,
    revoke_user_sessions,
)

__all__ = [
    "Ended",
    "Spelling",
    "Target",
    "backfill_page",
    "end_session",
    "end_sessions",
    "end_sign_in",
    "ensure_login_id",
    "fail_request",
    "hand_on",
    "limit_sessions",
    "parse_target",
    "link_session",
    "notify_new_sign_in",
    "revoke",
    "revoke_sessions",
    "revoke_user_sessions",
    "run_request",
    "stamp_sign_in",
    "sweep_outbox",
    "touch_session",
]
