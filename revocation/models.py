"""The user-to-session link and the durable revocation requests."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class UserSession(models.Model):
    """One live session of a logged-in user.

    `session_key` is a plain column, not a ForeignKey to Session: any FK or
    delete receiver on Session makes Django's clear_expired() load every
    expired row into memory (see DESIGN §5), so the link carries no cascade.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        # Covered by the (user, created_at) index below.
        db_index=False,
        verbose_name=_("user"),
    )
    session_key = models.CharField(max_length=40, unique=True)
    # The sign-in id stamped in the session (revocation.stamps.LOGIN_ID): unlike the
    # key it survives cycle_key(), so "keep this session" still finds it after a rotation.
    login_id = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(_("signed in"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("last seen"), default=timezone.now)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=512, blank=True, default="")
    # What the user agent and its client hints said at sign-in (revocation.devices):
    # worked out once, not on every listing, and kept when the user agent is not.
    device = models.CharField(max_length=128, blank=True, default="")
    # Where the IP was, with a GeoIP database configured (ISO 3166 code and city name).
    country = models.CharField(_("country"), max_length=2, blank=True, default="")
    city = models.CharField(_("city"), max_length=128, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["user", "created_at"], name="revocation_us_user_idx")]
        verbose_name = _("user session")
        verbose_name_plural = _("user sessions")

    def __str__(self) -> str:
        return gettext("session %(id)s of user %(user)s") % {"id": self.pk, "user": self.user_id}


class RevocationRequest(models.Model):
    """A durable request to log users out: the outbox row and the audit record.

    The row commits before any Celery message is sent; workers page through
    the target users by primary key, storing `cursor` after each committed
    page, so a redelivered or re-enqueued task resumes where the last one
    stopped.
    """

    # Lower case: the words stand mid-sentence ("Revocation #5 done: ...") and in badges.
    class State(models.TextChoices):
        PENDING = "pending", _("pending")
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    class Target(models.TextChoices):
        USERS = "users", _("Users")
        GROUP = "group", _("Group")
        SCOPE = "scope", _("Scope")
        EVERYONE = "everyone", _("Everyone")
        SESSIONS = "sessions", _("Sessions")

    class Phase(models.TextChoices):
        USERS = "users", "mapped sessions of the target users"
        SESSIONS = "sessions", "unmapped sessions in the session table"
        PARTS = "parts", "mapped sessions, by key ranges on parallel tasks"

    target = models.CharField(_("target"), max_length=16, choices=Target.choices)
    user_ids = models.JSONField(default=list, blank=True)
    # UserSession ids, for the `sessions` target (a concurrent-session limit).
    session_ids = models.JSONField(default=list, blank=True)
    group_name = models.CharField(max_length=150, blank=True, default="")
    scope_name = models.CharField(max_length=64, blank=True, default="")
    scope_value = models.CharField(max_length=255, blank=True, default="")
    # Kept alive (the session that asked to log out its other sessions): by key, and by
    # sign-in id, which still names it if a concurrent request rotated the key.
    keep_session_key = models.CharField(max_length=40, blank=True, default="")
    keep_login_id = models.CharField(max_length=32, blank=True, default="")
    reason = models.CharField(_("reason"), max_length=255, blank=True, default="")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("requested by"),
    )

    state = models.CharField(
        _("state"), max_length=8, choices=State.choices, default=State.PENDING, db_index=True
    )
    phase = models.CharField(max_length=8, choices=Phase.choices, default=Phase.USERS)
    # Last user id (USERS phase) or session key (SESSIONS phase) fully handled.
    cursor = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(_("requested"), default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # Heartbeat: bumped by every committed page; the sweeper re-enqueues stale rows.
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)
    enqueue_failed = models.BooleanField(default=False)

    users_total = models.PositiveIntegerField(_("users in total"), default=0)
    users_done = models.PositiveIntegerField(_("users done"), default=0)
    sessions_revoked = models.PositiveBigIntegerField(_("sessions revoked"), default=0)
    error = models.TextField(_("error"), blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["state", "updated_at"], name="revocation_rr_state_idx")]
        ordering = ["-created_at", "-pk"]
        verbose_name = _("revocation request")
        verbose_name_plural = _("revocation requests")

    def __str__(self) -> str:
        return gettext("revocation #%(id)s (%(target)s, %(state)s)") % {
            "id": self.pk,
            "target": self.get_target_display(),
            "state": self.get_state_display(),
        }

    @property
    def is_finished(self) -> bool:
        """Return whether the request reached a final state."""
        return self.state in (self.State.DONE, self.State.FAILED)


class RevocationPart(models.Model):
    """One key range of a fanned-out request, carried out by its own task.

    The range is the target users with `after` < id <= `upto` ("" leaves that side
    open); like a request, a part stores `cursor` after each committed page, and
    each page adds its figures to the request's in the same transaction.
    """

    request = models.ForeignKey(RevocationRequest, on_delete=models.CASCADE, related_name="parts")
    number = models.PositiveSmallIntegerField(_("number"))
    after = models.CharField(_("after user id"), max_length=64, blank=True, default="")
    upto = models.CharField(_("up to user id"), max_length=64, blank=True, default="")
    cursor = models.CharField(max_length=64, blank=True, default="")
    done = models.BooleanField(_("done"), default=False)
    users_done = models.PositiveIntegerField(_("users done"), default=0)
    sessions_revoked = models.PositiveBigIntegerField(_("sessions revoked"), default=0)
    # Heartbeat and publish failure, read by the sweeper as for requests.
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)
    enqueue_failed = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["request", "number"], name="revocation_part_uniq")
        ]
        ordering = ["request", "number"]
        verbose_name = _("revocation part")
        verbose_name_plural = _("revocation parts")

    def __str__(self) -> str:
        return gettext("part %(number)s of revocation #%(id)s") % {
            "number": self.number,
            "id": self.request_id,
        }


class RevocationFence(models.Model):
    """A "not valid before" time for a user, a group, a scope, or everyone.

    A session whose sign-in time predates a fence that applies to it is logged
    out on its next request, before any worker has deleted it. `key` is
    "user:<id>", "group:<name>", "scope:<name>:<value>" or "global"; or
    "keep:<sign-in id>", the time of the newest revocation that keeps that
    sign-in alive (it is spared by a user fence no newer than that); or
    "login:<sign-in id>", that sign-in ended for good (a signed cookie).
    """

    # The key of an ended sign-in is this and its id (see `fences.login_key`).
    LOGIN_PREFIX = "login:"

    # Long enough for "scope:" + a 64-character name + ":" + a 255-character value.
    key = models.CharField(max_length=400, unique=True)
    not_before = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["not_before"], name="revocation_fence_nb_idx")]

    def __str__(self) -> str:
        return f"{self.key} not before {self.not_before.isoformat()}"
