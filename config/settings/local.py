"""Local development: the embedded default (SQLite, filesystem broker, file cache)."""

import os

# A fixed key is fine on a laptop; production.py has no default.
os.environ.setdefault("SECRET_KEY", "insecure-local-development-key")

from .base import *  # noqa: E402,F403
from .base import env  # noqa: E402

DEBUG = env.bool("DEBUG", default=True)
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
# Serve static files straight from the apps, no collectstatic needed.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
