"""RevocationMiddleware: keeps the user-to-session link current on every request.

Place it after `AuthenticationMiddleware` (and so after `SessionMiddleware`):
its response phase must run before SessionMiddleware saves the session.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.contrib.auth import SESSION_KEY, logout
from django.http import HttpRequest, HttpResponse

from . import fences, lifetimes, linking, stamps, targets
from .app_settings import app_settings

logger = logging.getLogger("revocation")

Handler = Callable[[HttpRequest], HttpResponse]


class RevocationMiddleware:
    """Link sessions to users across key changes, record activity, end expired or fenced ones."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], object]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> object:
        if self.is_async:
            return self.__acall__(request)
        self.process_request(request)
        response = self.get_response(request)
        self.process_response(request, response)  # type: ignore[arg-type]
        return response

    async def __acall__(self, request: HttpRequest) -> object:
        await sync_to_async(self.process_request)(request)
        handler: Callable[[HttpRequest], Awaitable[HttpResponse]] = self.get_response  # type: ignore[assignment]
        response = await handler(request)
        await sync_to_async(self.process_response)(request, response)
        return response

    def process_request(self, request: HttpRequest) -> None:
        """Remember the incoming session key; log out a session expired or fenced off."""
        linking.begin(request)
        session = request.session
        if session.session_key is None:
            # No session cookie: nothing to fence, and reading the session would make
            # SessionMiddleware add `Vary: Cookie` to every public page.
            return
        # First the limits: they read the session only, the fence may read the cache.
        if lifetimes.expired(session, linking.clock()):
            # Past its idle timeout or lifetime: nothing deletes it, its next request ends it.
            log_out(request, "expired")
        elif fences.is_fenced(session, stamps.signed_in_at(session), lambda: scopes_of(request)):
            # The worker may not have deleted it yet (or cannot: signed cookies).
            log_out(request, "fenced")

    def process_response(self, request: HttpRequest, response: HttpResponse) -> None:
        """Follow key changes made during the request, then record activity."""
        session = request.session
        if session.session_key is None and not session.is_empty() and response.status_code < 500:
            # After a flush() (login as another user) the new key only exists once saved;
            # save now so the mapping can name it. SessionMiddleware saves again, harmlessly.
            session.save()
        linking.reconcile(request)
        if session.accessed and session.session_key:
            interval = lifetimes.activity_interval(
                touch_interval=app_settings.TOUCH_INTERVAL, idle_timeout=app_settings.IDLE_TIMEOUT
            )
            linking.touch(request, interval)
        linking.end(request)


def log_out(request: HttpRequest, why: str) -> None:
    """Log the request's session out: flushed, and the request goes on as anonymous."""
    logger.info(
        "revocation: %s session of user %s logged out", why, request.session.get(SESSION_KEY)
    )
    logout(request)


def scopes_of(request: HttpRequest) -> list[str]:
    """Return the group and scope fence keys of the request's user (a query or more)."""
    return targets.fence_keys_of(request.user)
