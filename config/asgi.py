"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

# A server never falls back to DEBUG: manage.py, `make run` and the tests name theirs.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
application = get_asgi_application()
