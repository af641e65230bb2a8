"""A session engine with server state but no table and no cache: a dict in this process.

Stands for a project's own engine (Mongo, DynamoDB, ...) that the app knows nothing
about: revocation must delete its sessions through the engine's own delete().
"""

from __future__ import annotations

from typing import Any

from django.contrib.sessions.backends.base import CreateError, SessionBase

STORE: dict[str, dict[str, Any]] = {}


class SessionStore(SessionBase):
    """Sessions kept in the module-level STORE."""

    def load(self) -> dict[str, Any]:
        data = STORE.get(self.session_key or "")
        if data is None:
            self._session_key = None
            return {}
        return dict(data)

    def exists(self, session_key: str) -> bool:
        return session_key in STORE

    def create(self) -> None:
        while True:
            self._session_key = self._get_new_session_key()  # type: ignore[attr-defined]
            try:
                self.save(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return self.create()
        if must_create and self.session_key in STORE:
            raise CreateError
        STORE[self.session_key] = self._get_session(no_load=must_create)  # type: ignore[attr-defined]
        return None

    def delete(self, session_key: str | None = None) -> None:
        STORE.pop(session_key or self.session_key or "", None)

    @classmethod
    def clear_expired(cls) -> None:
        """Nothing expires in memory during a test."""
