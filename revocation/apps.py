"""App configuration: connects receivers and registers system checks."""

from django.apps import AppConfig


class RevocationConfig(AppConfig):
    """Session revocation."""

    name = "revocation"
    verbose_name = "Session revocation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, receivers  # noqa: F401
