"""Create the demo superuser and users that `make run` prints."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

DEMO_PASSWORD = "demo-pass-123"  # noqa: S105 - documented demo credential
DEMO_USERS = (("admin", True), ("alice", False), ("bob", False))


class Command(BaseCommand):
    help = "Create a demo superuser and two demo users (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        staff, _ = Group.objects.get_or_create(name="demo")
        for username, is_admin in DEMO_USERS:
            user = user_model.objects.filter(username=username).first()
            if user is None:
                create = (
                    user_model.objects.create_superuser
                    if is_admin
                    else user_model.objects.create_user
                )
                user = create(username=username, password=DEMO_PASSWORD)
            if not is_admin:
                user.groups.add(staff)
        self.stdout.write(
            "Demo users: admin (superuser), alice, bob (group 'demo'); "
            f"password for all: {DEMO_PASSWORD}"
        )
