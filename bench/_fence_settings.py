"""Settings of the fence benchmark's server: local settings plus a one-view URLconf."""

import os

from config.settings.local import *  # noqa: F403
from config.settings.local import MIDDLEWARE

ROOT_URLCONF = "bench._fence_urls"
if os.environ.get("BENCH_FENCE") == "0":
    MIDDLEWARE = [m for m in MIDDLEWARE if m != "revocation.middleware.RevocationMiddleware"]
