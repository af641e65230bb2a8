"""Signals sent by the revocation app.

sessions_revoked
    Sent once a RevocationRequest reaches `done`, after its last page commits.
    Keyword arguments: `revocation` (the RevocationRequest) and
    `sessions_revoked` (int, sessions deleted by that request).

session_linked
    Sent once a sign-in is linked to its user, from the request that signed in
    (not for a key rotation of the same sign-in, nor for a session linked on
    first sight after the app was installed). The sender is the user's class, as
    for `user_logged_in`. Keyword arguments: `user`, `request` and `session` (the
    UserSession row as stored: `device`, `ip`, `country`, `city`, `user_agent`,
    `created_at`), on every engine (a signed cookie is linked by its sign-in id).
    With no receiver connected, linking costs no query for it; with one, the row
    is read once. A receiver that raises is logged and the login goes on.
"""

from django.dispatch import Signal

sessions_revoked = Signal()
session_linked = Signal()
