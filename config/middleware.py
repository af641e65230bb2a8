"""Response headers every page of this service carries: a Content-Security-Policy, and
no shared caching of anything that depends on who is logged in.

A small middleware rather than django-csp: the policy is one fixed string (the
pages load no inline script or style, so no nonces), and Django 6.0's built-in
CSP middleware can replace it with the same setting when the project moves there.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control


class SecurityHeadersMiddleware:
    """Add CONTENT_SECURITY_POLICY to HTML responses; keep per-user responses private.

    Place it right after SecurityMiddleware, before SessionMiddleware: its response
    phase then runs after SessionMiddleware has added `Vary: Cookie` to every
    response that read the session, which is how it knows a response is per-user.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = getattr(settings, "CONTENT_SECURITY_POLICY", "")
        is_html = response.get("Content-Type", "").startswith("text/html")
        if policy and is_html and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        if "cookie" in response.get("Vary", "").lower():
            # A page that depends on the session must never be stored by a proxy or CDN.
            patch_cache_control(response, private=True, no_store=True)
        return response
