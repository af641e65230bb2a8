"""The Celery application of this service (`celery -A config worker`)."""

import os

from celery import Celery

# A server never falls back to DEBUG: manage.py, `make run` and the tests name theirs.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("config")
# Every CELERY_* Django setting configures Celery; see config/settings/base.py.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
