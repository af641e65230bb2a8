"""Template helpers of the sessions page and the dashboard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django import template
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince, timeuntil
from django.utils.translation import gettext

from revocation import selectors
from revocation.models import RevocationRequest

register = template.Library()


@register.filter
def target(revocation: RevocationRequest) -> str:
    """Describe who `revocation` targets."""
    return selectors.describe_target(revocation)


@register.filter
def when(value: datetime | None) -> SafeString | str:
    """Render "3 minutes ago" in a <time> element with the exact time on hover."""
    if value is None:
        return "—"
    relative = (
        gettext("just now")
        if (timezone.now() - value).total_seconds() < 60
        else gettext("%(time)s ago") % {"time": timesince(value, depth=1)}
    )
    return format_html(
        '<time datetime="{}" title="{}">{}</time>', value.isoformat(), _exact(value), relative
    )


@register.filter
def until(value: datetime) -> SafeString:
    """Render "in 14 minutes" in a <time> element with the exact time on hover."""
    ahead = (value - timezone.now()).total_seconds()
    if ahead < 60:
        relative = gettext("in under a minute") if ahead > 0 else gettext("now")
    else:
        relative = gettext("in %(time)s") % {"time": timeuntil(value, depth=1)}
    return format_html(
        '<time datetime="{}" title="{}">{}</time>', value.isoformat(), _exact(value), relative
    )


@register.filter
def duration(seconds: int) -> str:
    """Render a number of seconds as "15 minutes" or "1 day, 2 hours" (Django's words)."""
    start = datetime(2000, 1, 1, tzinfo=UTC)  # any date: only the difference counts
    return timesince(start, start + timedelta(seconds=seconds), depth=2)


def _exact(value: datetime) -> str:
    """Return `value` in the current time zone and language's format, with the zone's name."""
    # As {{ value }} would: an aware time in the current zone; a naive one (USE_TZ off) as it is.
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return f"{formats.date_format(local, 'DATETIME_FORMAT')} {formats.date_format(local, 'T')}"
