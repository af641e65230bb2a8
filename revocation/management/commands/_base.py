"""The base of the revocation commands: their help in the reader's language."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils.translation import gettext


class TranslatedCommand(BaseCommand):
    """A command whose `help`, marked with gettext_noop, is translated when the parser is built.

    argparse needs a str, not a lazy translation; and the language is only known at run time.
    """

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # From the class: an earlier parser may have translated this instance's already.
        english = type(self).help
        self.help = gettext(english) if english else english
        return super().create_parser(prog_name, subcommand, **kwargs)
