"""Read-only admin screens for the session links."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from . import devices, permissions, selectors, services
from .models import RevocationPart, RevocationRequest, UserSession


class ReadOnlyAdmin(admin.ModelAdmin):
    """An admin that shows rows but never adds, edits or deletes them."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(UserSession)
class UserSessionAdmin(ReadOnlyAdmin):
    """Who is logged in where."""

    list_display = ("user", "device_label", "ip", "country", "created_at", "last_seen_at")
    list_select_related = ("user",)
    list_filter = ("country",)
    search_fields = ("user__username", "ip")
    date_hierarchy = "created_at"
    # The session key is a credential: never shown.
    exclude = ("session_key",)
    readonly_fields = (
        "user",
        "device_label",
        "ip",
        "country",
        "city",
        "user_agent",
        "created_at",
        "last_seen_at",
    )
    fields = readonly_fields

    @admin.display(description=_("device"), ordering="device")
    def device_label(self, obj: UserSession) -> str:
        return devices.label(obj.device, obj.user_agent)


class RevocationPartInline(admin.TabularInline):
    """The key ranges of a fanned-out request, with each one's progress (read only)."""

    model = RevocationPart
    fields = ("number", "after", "upto", "done", "users_done", "sessions_revoked", "updated_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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

    @admin.display(description="target")
    def target_display(self, obj: RevocationRequest) -> str:
        return selectors.describe_target(obj)

    @admin.display(description="progress")
    def progress(self, obj: RevocationRequest) -> str:
        if not obj.users_total:
            return f"{obj.users_done} users"
        return (
            f"{obj.users_done}/{obj.users_total} users ({100 * obj.users_done // obj.users_total}%)"
        )


def _announce(admin_request: HttpRequest, revocation: RevocationRequest) -> None:
    """Tell the admin user the request was accepted, linking to its status page."""
    url = reverse("admin:revocation_revocationrequest_change", args=[revocation.pk])
    messages.success(
        admin_request,
        format_html(
            'Force logout accepted: <a href="{}">revocation #{}</a> ({}).',
            url,
            revocation.pk,
            selectors.describe_target(revocation),
        ),
    )


def _allowed(admin_request: HttpRequest) -> bool:
    """Return whether the admin user may force logouts, saying so if not."""
    if permissions.can_start(admin_request.user):
        return True
    messages.error(admin_request, f"Forcing a logout needs the {permissions.START} permission.")
    return False


@admin.action(description="Force logout of the selected users")
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


@admin.action(description="Force logout of every member of the selected groups")
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
