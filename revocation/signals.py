"""Signals sent by the revocation app.

sessions_revoked
    Sent once a RevocationRequest reaches `done`, after its last page commits.
    Keyword arguments: `revocation` (the RevocationRequest) and
    `sessions_revoked` (int, sessions deleted by that request).
"""

from django.dispatch import Signal

sessions_revoked = Signal()
