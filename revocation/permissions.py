"""Who may revoke other users' sessions, and who may read revocations: one rule for every face.

Starting a revocation of other users needs `revocation.add_revocationrequest`;
listing and reading revocations needs `revocation.view_revocationrequest`.
Superusers have both. `is_staff` alone grants neither: it only opens the admin.
"""

from __future__ import annotations

from typing import Any

START = "revocation.add_revocationrequest"
VIEW = "revocation.view_revocationrequest"


def can_start(user: Any) -> bool:
    """Return whether `user` may start revocations of other users."""
    return bool(user.is_authenticated and user.has_perm(START))


def can_view(user: Any) -> bool:
    """Return whether `user` may list and read revocation requests."""
    return bool(user.is_authenticated and user.has_perm(VIEW))
