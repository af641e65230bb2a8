#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    """Run administrative tasks."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    from django.conf import settings
    from django.core.management import execute_from_command_line

    # Settings that cannot load (a missing SECRET_KEY) say so now: Django 4.2 keeps the
    # error to itself, and `check` then fails with "Models aren't loaded yet".
    settings.INSTALLED_APPS  # noqa: B018
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
