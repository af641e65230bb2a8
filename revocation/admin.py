"""Admin screens: the session links (read only, with "end session") and the revocations."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, PermissionDenied
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from . import devices, linking, permissions, selectors, services
from .app_settings import app_settings
from .models import RevocationPart, RevocationRequest, UserSession


class ReadOnly:
    """Rows are shown, never added, edited or deleted (an admin or an inline)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(ReadOnly, admin.ModelAdmin):
    """An admin that shows rows but never adds, edits or deletes them."""


def device_of(obj: UserSession) -> str:
    """Return the device recorded at sign-in, else one worked out from the user agent."""
    return devices.label(obj.device, obj.user_agent)


def place_of(obj: UserSession) -> str:
    """Return "city, country" as far as they are known, or ""."""
    return ", ".join(part for part in (obj.city, obj.country) if part)


class SessionColumns:
    """The device and place columns of a session, for lists and read-only fields."""

    @admin.display(description=_("device"))
    def device_column(self, obj: UserSession) -> str:
        return device_of(obj)

    @admin.display(description=_("place"))
    def place_column(self, obj: UserSession) -> str:
        return place_of(obj)


class ColumnFilter(admin.SimpleListFilter):
    """The values a text column holds, an empty one offered as "Unknown"."""

    # Not a value a device description or a country code takes.
    UNKNOWN = "(unknown)"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        # DISTINCT over a column with no index: a scan per page load, fine for the admin.
        values = (
            model_admin.get_queryset(request)
            .order_by(self.parameter_name)
            .values_list(self.parameter_name, flat=True)
            .distinct()
        )
        return [(v, self.show(v)) if v else (self.UNKNOWN, _("Unknown")) for v in values]

    def show(self, value: str) -> str:
        """Return how a stored value reads in the filter."""
        return value

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset
        column = str(self.parameter_name)
        return queryset.filter(**{column: "" if value == self.UNKNOWN else value})


class DeviceFilter(ColumnFilter):
    """Sessions by the device recorded at sign-in."""

    title = _("device")
    parameter_name = "device"

    def show(self, value: str) -> str:
        """Return the stored description in words ("Chrome on Windows 11")."""
        return devices.label(value)


class CountryFilter(ColumnFilter):
    """Sessions by the country their IP was in at sign-in."""

    title = _("country")
    parameter_name = "country"


class SignedInFilter(admin.SimpleListFilter):
    """Sessions by when they signed in: today, the past 7 or 30 days, or longer ago."""

    title = _("signed in")
    parameter_name = "signed_in"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("today", _("Today")),
            ("7d", _("Past 7 days")),
            ("30d", _("Past 30 days")),
            ("older", _("More than 30 days ago")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        now = timezone.now()
        since = {
            # Midnight in the current time zone, the "today" of whoever is looking.
            "today": timezone.make_aware(datetime.combine(timezone.localdate(now), time.min)),
            "7d": now - timedelta(days=7),
            "30d": now - timedelta(days=30),
        }
        value = self.value()
        if value in since:
            return queryset.filter(created_at__gte=since[value])
        if value == "older":
            return queryset.filter(created_at__lt=now - timedelta(days=30))
        return queryset


# Selected sessions one action ends in the request: beyond it, force out the users
# instead (a worker's job). The changelist shows 100 a page; "select all" can reach more.
MAX_ENDED_AT_ONCE = 1000


@admin.register(UserSession)
class UserSessionAdmin(SessionColumns, ReadOnlyAdmin):
    """Who is logged in where; staff who may revoke can end single sessions."""

    list_display = ("user", "device_column", "ip", "place_column", "created_at", "last_seen_at")
    list_select_related = ("user",)
    # Distinct values of a column with no index: a scan per page load, fine for the admin.
    list_filter = (DeviceFilter, CountryFilter, SignedInFilter)
    search_help_text = _("Username, e-mail address, or the beginning of an IP address.")
    date_hierarchy = "created_at"
    # The session key is a credential and the sign-in id names the session: never shown.
    fields = (
        "user",
        "device_column",
        "ip",
        "country",
        "city",
        "user_agent",
        "created_at",
        "last_seen_at",
    )
    readonly_fields = fields
    actions = ["end_selected"]

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        """Search the user model's username and e-mail fields (a custom model's too), and IPs."""
        user_model = get_user_model()
        names = [user_model.USERNAME_FIELD]
        email = getattr(user_model, "get_email_field_name", lambda: "email")()
        if email != user_model.USERNAME_FIELD and _has_field(user_model, email):
            names.append(email)
        # "^": starts with, so "10.1." finds a network; on PostgreSQL on the text of the inet.
        return [*(f"user__{name}" for name in names), "^ip"]

    def has_end_permission(self, request: HttpRequest) -> bool:
        """Ending other users' sessions is revoking them: `permissions.START`, as everywhere."""
        return permissions.can_start(request.user)

    @admin.action(description=_("End selected sessions"), permissions=["end"])
    def end_selected(self, request: HttpRequest, queryset: QuerySet[UserSession]) -> None:
        """End the selected sessions now, except the operator's own."""
        ids = list(queryset.values_list("pk", flat=True)[: MAX_ENDED_AT_ONCE + 1])
        if len(ids) > MAX_ENDED_AT_ONCE:
            self.message_user(
                request,
                _(
                    "Select at most %(max)d sessions at a time; to log users out everywhere, "
                    "use Force logout on the users."
                )
                % {"max": MAX_ENDED_AT_ONCE},
                messages.ERROR,
            )
            return
        ended = self._end(request, queryset.filter(pk__in=ids))
        self.message_user(
            request,
            ngettext("%(count)d session ended.", "%(count)d sessions ended.", ended)
            % {"count": ended},
            messages.SUCCESS,
        )

    def _end(self, request: HttpRequest, rows: QuerySet[UserSession]) -> int:
        """End `rows` through the service, logged in the admin's history; skip our own."""
        own = linking.link_key(request.session)
        if own and rows.filter(session_key=own).exists():
            self.message_user(
                request,
                _("Your own session was not ended: log out instead."),
                messages.WARNING,
            )
            rows = rows.exclude(session_key=own)
        rows = rows.order_by("pk")
        _log_deletions(self, request, rows)
        return services.end_sessions(
            list(rows.values_list("pk", flat=True)),
            keep_session_key=own,
            requested_by=request.user,
        )

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        end = path(
            "<path:object_id>/end/",
            self.admin_site.admin_view(self.end_view),
            name="{}_{}_end".format(*info),
        )
        return [end, *super().get_urls()]

    def end_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """End one session: the button on its page (POST)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = self.get_object(request, unquote(object_id))
        if not (self.has_view_permission(request, obj) and self.has_end_permission(request)):
            needs = _("Ending sessions needs the %s permission.") % permissions.START
            raise PermissionDenied(needs)
        changelist = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
        if obj is None:
            self.message_user(request, _("That session has ended already."), messages.WARNING)
            return redirect(changelist)
        if self._end(request, self.get_queryset(request).filter(pk=obj.pk)):
            self.message_user(request, _("Session ended: %s.") % obj, messages.SUCCESS)
        return redirect(changelist)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = {**(extra_context or {}), "may_end": self.has_end_permission(request)}
        return super().change_view(request, object_id, form_url, context)


def _has_field(model: Any, name: str) -> bool:
    """Return whether `model` has a concrete field `name`."""
    try:
        model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True


def _log_deletions(model_admin: Any, request: HttpRequest, rows: QuerySet[Any]) -> None:
    """Record `rows` as deleted in the admin's history (before they go, as Django's delete)."""
    if hasattr(model_admin, "log_deletions"):  # Django 5.1+
        model_admin.log_deletions(request, rows)
    else:
        for obj in rows:
            model_admin.log_deletion(request, obj, str(obj))


class _NewestSessions(BaseInlineFormSet):  # type: ignore[type-arg]
    """The newest INLINE_ROWS sessions of the user, under a prefix of their own."""

    @classmethod
    def get_default_prefix(cls) -> str:
        # The link's related_name is "+": Django's default prefix would be empty.
        return "revocation_sessions"

    def get_queryset(self) -> QuerySet[Any]:
        if not hasattr(self, "_newest"):
            self._newest = super().get_queryset()[:INLINE_ROWS]
        return self._newest


# Sessions shown on a user's page; the sessions list, filtered by user, has them all.
INLINE_ROWS = 50


class UserSessionInline(SessionColumns, ReadOnly, admin.TabularInline):  # type: ignore[type-arg]
    """A user's sessions on their admin page, newest first, each linking to its own page.

    Read only; a session's own page has the "End this session" button. Django's own
    UserAdmin gets it (REVOCATION_ADMIN_USER_INLINE); add it to your own UserAdmin's
    `inlines` yourself.
    """

    model = UserSession
    formset = _NewestSessions
    fields = ("device_column", "ip", "place_column", "created_at", "last_seen_at")
    readonly_fields = fields
    ordering = ("-created_at", "-pk")
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = _("sessions, newest first")


def attach_user_inline(site: admin.AdminSite = admin.site) -> bool:
    """Add UserSessionInline to the user admin on `site` if it is Django's own UserAdmin.

    A project's own UserAdmin is left alone (it may lay out its page, or its
    inlines, its own way): it lists UserSessionInline in its `inlines`. Returns
    whether the inline is attached.
    """
    try:
        wanted = app_settings.ADMIN_USER_INLINE
    except ImproperlyConfigured:
        return False  # reported by system check revocation.E003
    model_admin = site._registry.get(get_user_model())
    if not wanted or type(model_admin) is not DjangoUserAdmin:
        return False
    if UserSessionInline not in model_admin.inlines:
        # This instance only, as _add_action() does: the class stays Django's.
        model_admin.inlines = [*model_admin.inlines, UserSessionInline]  # type: ignore[misc]
    return True


class RevocationPartInline(ReadOnly, admin.TabularInline):
    """The key ranges of a fanned-out request, with each one's progress (read only)."""

    model = RevocationPart
    fields = ("number", "after", "upto", "done", "users_done", "sessions_revoked", "updated_at")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(RevocationRequest)
class RevocationRequestAdmin(ReadOnlyAdmin):
    """The audit log of revocations, with their progress."""

    inlines = (RevocationPartInline,)

    list_display = (
        "id",
        "state",
        "target_display",
        "reason",
        "requested_by",
        "progress",
        "sessions_revoked",
        "created_at",
        "finished_at",
    )
    list_filter = ("state", "target")
    list_select_related = ("requested_by",)
    search_fields = ("reason", "group_name", "scope_value")
    exclude = ("keep_session_key", "cursor", "phase", "enqueue_failed")
    readonly_fields = (
        "state",
        "target_display",
        "reason",
        "requested_by",
        "progress",
        "users_total",
        "users_done",
        "sessions_revoked",
        "created_at",
        "started_at",
        "finished_at",
        "updated_at",
        "error",
    )
    fields = readonly_fields

    @admin.display(description=_("target"))
    def target_display(self, obj: RevocationRequest) -> str:
        return selectors.describe_target(obj)

    @admin.display(description=_("progress"))
    def progress(self, obj: RevocationRequest) -> str:
        done, total = obj.users_done, obj.users_total
        if not total:
            return ngettext("%(done)d user", "%(done)d users", done) % {"done": done}
        return ngettext(
            "%(done)d/%(total)d user (%(percent)d%%)",
            "%(done)d/%(total)d users (%(percent)d%%)",
            total,
        ) % {"done": done, "total": total, "percent": 100 * done // total}


def _announce(admin_request: HttpRequest, revocation: RevocationRequest) -> None:
    """Tell the admin user the request was accepted, linking to its status page."""
    url = reverse("admin:revocation_revocationrequest_change", args=[revocation.pk])
    messages.success(
        admin_request,
        format_html(
            gettext('Force logout accepted: <a href="{url}">revocation #{id}</a> ({target}).'),
            url=url,
            id=revocation.pk,
            target=selectors.describe_target(revocation),
        ),
    )


def _allowed(admin_request: HttpRequest) -> bool:
    """Return whether the admin user may force logouts, saying so if not."""
    if permissions.can_start(admin_request.user):
        return True
    messages.error(
        admin_request,
        gettext("Forcing a logout needs the %(permission)s permission.")
        % {"permission": permissions.START},
    )
    return False


@admin.action(description=_("Force logout of the selected users"))
def force_logout_users(
    modeladmin: admin.ModelAdmin[Any], admin_request: HttpRequest, queryset: QuerySet[Any]
) -> None:
    """Revoke every session of the selected users in one request."""
    if _allowed(admin_request):
        revocation = services.revoke_sessions(
            user_ids=list(queryset.values_list("pk", flat=True)),
            reason="forced logout from the admin",
            requested_by=admin_request.user,
        )
        _announce(admin_request, revocation)


@admin.action(description=_("Force logout of every member of the selected groups"))
def force_logout_groups(
    modeladmin: admin.ModelAdmin[Any], admin_request: HttpRequest, queryset: QuerySet[Any]
) -> None:
    """Revoke every session of the members of each selected group (one request per group)."""
    if _allowed(admin_request):
        for group in queryset:
            revocation = services.revoke_sessions(
                group=group.name,
                reason="forced logout from the admin",
                requested_by=admin_request.user,
            )
            _announce(admin_request, revocation)


def _add_action(model: Any, action: Any) -> None:
    """Add `action` to the admin already registered for `model` (auth's own admins)."""
    if admin.site.is_registered(model):
        # The registry itself: AdminSite.get_model_admin() is Django 5.0+.
        model_admin = admin.site._registry[model]
        model_admin.actions = [*(model_admin.actions or []), action]


_add_action(get_user_model(), force_logout_users)
_add_action(Group, force_logout_groups)
attach_user_inline()
