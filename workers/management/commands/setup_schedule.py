"""Install the beat schedule into django-celery-beat."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from workers import beat


class Command(BaseCommand):
    help = "Install the periodic tasks of workers/schedule.py into django-celery-beat."

    def handle(self, *args: Any, **options: Any) -> None:
        result = beat.install()
        self.stdout.write(
            f"Schedule installed: {result.created} created, {result.updated} updated, "
            f"{result.unchanged} unchanged, {result.removed} retired removed."
        )
