"""App configuration of the worker runtime: creates the local folders at startup."""

from __future__ import annotations

from pathlib import Path

from django.apps import AppConfig
from django.conf import settings


class WorkersConfig(AppConfig):
    """This service's runtime around the revocation app (beat schedule, demo data)."""

    name = "workers"
    verbose_name = "Workers"

    def ready(self) -> None:
        # Every process (web, worker, beat, manage.py, tests) starts Django before it
        # opens the SQLite file or the broker folder, and neither creates its folder.
        for folder in getattr(settings, "LOCAL_FOLDERS", ()):
            Path(folder).mkdir(parents=True, exist_ok=True)
