"""Settings for Django's runtests.py: its default test_sqlite, plus a runner that records results.

runtests.py replaces INSTALLED_APPS and MIDDLEWARE itself; conformance.harness patches
those, so nothing here differs between the two runs.
"""

from __future__ import annotations

from test_sqlite import *  # noqa: F403  (Django's tests/ folder is first on sys.path)

TEST_RUNNER = "conformance.recording.RecordingRunner"
