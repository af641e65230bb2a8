"""App configuration of the worker runtime."""

from django.apps import AppConfig


class WorkersConfig(AppConfig):
    """Worker runtime (schedule, locks)."""

    name = "workers"
    verbose_name = "Workers"
