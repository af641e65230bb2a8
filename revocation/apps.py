"""App configuration: connects receivers, registers system checks and the Celery tasks."""

from django.apps import AppConfig


class RevocationConfig(AppConfig):
    """Session revocation."""

    name = "revocation"
    verbose_name = "Session revocation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # tasks: registered with whatever Celery app the project runs, so the outbox can
        # publish by name through the task itself (eager mode included) in every process.
        from . import checks, receivers, tasks  # noqa: F401
