"""Template helpers of the sessions page and the dashboard."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince

from revocation import selectors
from revocation.models import RevocationRequest

register = template.Library()


@register.filter
def target(revocation: RevocationRequest) -> str:
    """Describe who `revocation` targets."""
    return selectors.describe_target(revocation)


@register.filter
def when(value: datetime | None) -> SafeString | str:
    """Render "3 minutes ago" in a <time> element with the exact UTC time on hover."""
    if value is None:
        return "—"
    relative = (
        "just now"
        if (timezone.now() - value).total_seconds() < 60
        else f"{timesince(value, depth=1)} ago"
    )
    exact = value.astimezone(timezone.get_current_timezone()).strftime("%Y-%m-%d %H:%M:%S %Z")
    return format_html(
        '<time datetime="{}" title="{}">{}</time>', value.isoformat(), exact, relative
    )
