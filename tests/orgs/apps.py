"""Test-only app."""

from django.apps import AppConfig


class OrgsConfig(AppConfig):
    """Organisations (tests only)."""

    name = "tests.orgs"
    label = "orgs"
    default_auto_field = "django.db.models.BigAutoField"
