"""A session engine without clear_expired(), like Django's own test engine of that name."""

from django.contrib.sessions.backends.base import SessionBase


class SessionStore(SessionBase):
    """Session store without support for clearing expired sessions."""
