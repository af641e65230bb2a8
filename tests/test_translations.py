"""Translations: every string people read is marked, every catalogue is complete, and pages,
API errors, messages, the admin and the commands speak the language asked for."""

from __future__ import annotations

import html
import html.parser
import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import extract
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from django.contrib.auth.models import Group
from django.core.management import load_command_class
from django.template.base import Lexer, TokenType
from django.test import Client
from django.utils import timezone, translation
from django.utils.translation.template import templatize

from revocation import services
from revocation.models import UserSession
from tests.conftest import csrf_client, logged_in_client, run_command

ROOT = Path(__file__).resolve().parent.parent
# The app's catalogue serves revocation/ (it ships in the wheel); the project's, the pages
# in config/templates, which the app does not ship.
CATALOGUED = ("revocation", "config")
TEMPLATES = sorted(
    path
    for folder in CATALOGUED
    for path in (ROOT / folder / "templates").rglob("*")
    if path.suffix in (".html", ".txt")
)
CATALOGUES = sorted(ROOT.glob("*/locale/*/LC_MESSAGES/django.po"))
# What makemessages reads as a translation (django.core.management.commands.makemessages).
KEYWORDS: dict[str, Any] = {
    "gettext": None,
    "gettext_lazy": None,
    "gettext_noop": None,
    "_": None,
    "ngettext": (1, 2),
    "ngettext_lazy": (1, 2),
}

pytestmark = pytest.mark.django_db


def _page(html_text: str) -> str:
    """Return `html_text` with its whitespace collapsed, as people read it."""
    return " ".join(html_text.split())


# --- Every string is marked -----------------------------------------------------------

# Stands for each tag, variable and comment of a template: no letter, so never human text.
MARK = "\x1f"
# Attributes people read or hear (a screen reader speaks aria-label and title).
HUMAN_ATTRIBUTES = {"title", "alt", "aria-label", "placeholder"}
# A literal given to one of these filters is shown as it is: `{{ ip|default:"unknown" }}`.
SHOWN_LITERAL = re.compile(r"\|(?:default|default_if_none|yesno):(?P<q>[\"'])(?P<text>.*?)(?P=q)")


def untranslated_text(source: str) -> str:
    """Return the template `source` as a page with only its untranslated text left.

    Tags, variables and comments become MARK; everything inside {% blocktranslate %}
    and {% comment %} goes; a literal a filter would show stays, as text.
    """
    parts = []
    skipping = 0
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.TEXT:
            parts.append("" if skipping else token.contents)
            continue
        if token.token_type == TokenType.BLOCK:
            name = token.contents.split()[0]
            skipping += name in ("blocktranslate", "blocktrans", "comment")
            skipping -= name in ("endblocktranslate", "endblocktrans", "endcomment")
        shown = [m["text"] for m in SHOWN_LITERAL.finditer(token.contents)]
        parts.append(MARK + MARK.join(shown) + MARK)
    return "".join(parts)


class HumanText(html.parser.HTMLParser):
    """Collect what people read on a page: its text, and the attributes they read."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self._code = 0  # inside <script> or <style>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._code += tag in ("script", "style")
        kind = dict(attrs).get("type")
        for name, value in attrs:
            button = name == "value" and tag == "input" and kind in ("submit", "button", "reset")
            if name in HUMAN_ATTRIBUTES or button:
                self.texts.append(value or "")

    def handle_endtag(self, tag: str) -> None:
        self._code -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self._code:
            self.texts.append(data)


def unmarked(source: str) -> list[str]:
    """Return the pieces of human text in template `source` that are not marked."""
    parser = HumanText()
    parser.feed(untranslated_text(source))
    parser.close()
    pieces = (" ".join(text.replace(MARK, " ").split()) for text in parser.texts)
    # Punctuation, "·", "—", "#", entities and numbers need no translation: only letters do.
    return [piece for piece in pieces if any(char.isalpha() for char in piece)]


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("<p>Hello</p>", ["Hello"]),
        ('<a href="/x" title="Details">{% translate "Go" %}</a>', ["Details"]),
        ('<input type="submit" value="Send">', ["Send"]),
        ('{{ ip|default:"unknown" }}', ["unknown"]),
        ("{% if x %}Shown{% endif %}", ["Shown"]),
        ("{% blocktranslate %}Hi {{ name }}{% endblocktranslate %}", []),
        ('<p class="lead" id="x">{% translate "Hi" %} · &mdash; #{{ n }}</p>', []),
        ('<script src="/a.js"></script><input type="hidden" name="target" value="everyone">', []),
        ("{% comment %}Notes{% endcomment %}{{ x|default:'—' }}", []),
    ],
)
def test_the_checker_finds_unmarked_text_and_only_that(source: str, found: list[str]) -> None:
    assert unmarked(source) == found


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_template_text_is_marked_for_translation(template: Path) -> None:
    assert unmarked(template.read_text()) == [], "wrap it in {% translate %}"


def marked_strings(folder: Path) -> set[Any]:
    """Return the msgids makemessages would extract from `folder` (Python and templates)."""
    found: set[Any] = set()
    for path in sorted(folder.rglob("*")):
        if "migrations" in path.parts or path.suffix not in (".py", ".html", ".txt"):
            continue
        code = path.read_text()
        if path.suffix != ".py":
            code = templatize(code, origin=str(path))  # makemessages' own step
        for _line, message, _comments, _context in extract(
            "python", io.BytesIO(code.encode()), keywords=KEYWORDS
        ):
            found.add(message)
    return found


@pytest.mark.parametrize("folder", CATALOGUED)
def test_every_catalogue_has_exactly_the_marked_strings(folder: str) -> None:
    """A string marked but missing here shows in English: run makemessages (README)."""
    marked = marked_strings(ROOT / folder)
    for po in sorted((ROOT / folder / "locale").glob("*/LC_MESSAGES/django.po")):
        with po.open("rb") as source:
            ids = {m.id if isinstance(m.id, str) else tuple(m.id) for m in read_po(source) if m.id}
        assert sorted(marked - ids, key=str) == [], f"missing from {po}"
        assert sorted(ids - marked, key=str) == [], f"no longer marked, still in {po}"


def test_each_language_has_the_apps_and_the_projects_catalogue(settings: Any) -> None:
    languages = {code for code, _ in settings.LANGUAGES} - {"en"}
    found = {(po.relative_to(ROOT).parts[0], po.parts[-3]) for po in CATALOGUES}
    assert languages == {"de", "fr", "es"}
    assert found == {(folder, lang) for folder in CATALOGUED for lang in languages}


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda p: str(p.relative_to(ROOT)))
def test_each_catalogue_is_complete_and_compiles(po: Path) -> None:
    with po.open("rb") as source:
        catalog = read_po(source)
    assert not catalog.fuzzy, "the header is marked fuzzy: Babel would skip the whole file"
    problems: list[Any] = []
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        forms = catalog.num_plurals if message.pluralizable else 1
        if message.fuzzy or len(strings) != forms or not all(strings):
            problems.append(message.id)
    # Placeholders: the same %(name)s in the translation as in the original.
    problems += [(message.id, errors) for message, errors in catalog.check()]
    assert problems == []
    write_mo(io.BytesIO(), catalog)


# --- The language asked for -------------------------------------------------------------

PAGES = {
    "de": ("Ihre Sitzungen", "Andere Sitzungen abmelden", "gerade eben", "2 aktive Sitzungen"),
    "fr": ("Vos sessions", "Déconnecter les autres sessions", "à l’instant", "2 sessions actives"),
    "es": ("Sus sesiones", "Cerrar las demás sesiones", "justo ahora", "2 sesiones activas"),
}


@pytest.mark.parametrize("language", PAGES)
def test_the_sessions_page_speaks_the_browsers_language(make_user: Any, language: str) -> None:
    user = make_user()
    client = logged_in_client(user)
    logged_in_client(user)
    heading, button, just_now, caption = PAGES[language]

    response = client.get("/sessions/", HTTP_ACCEPT_LANGUAGE=f"{language},en;q=0.5")

    page = _page(response.content.decode())
    assert response["Content-Language"] == language
    assert f'<html lang="{language}">' in page
    assert f"<h1>{heading}</h1>" in page
    assert button in page
    assert just_now in page
    assert caption in page
    assert "Your sessions" not in page


def test_english_without_a_language_or_for_one_without_a_catalogue(make_user: Any) -> None:
    client = logged_in_client(make_user())
    for headers in ({}, {"HTTP_ACCEPT_LANGUAGE": "ja"}):
        page = _page(client.get("/sessions/", **headers).content.decode())
        assert '<html lang="en">' in page
        assert "<h1>Your sessions</h1>" in page


def test_the_message_after_logging_out_other_sessions_is_translated(make_user: Any) -> None:
    user = make_user()
    client, token = csrf_client(user, HTTP_ACCEPT_LANGUAGE="de")
    logged_in_client(user)

    response = client.post("/sessions/logout-others/", {"csrfmiddlewaretoken": token}, follow=True)

    assert "Ihre anderen Sitzungen werden abgemeldet; das dauert einige Sekunden." in _page(
        response.content.decode()
    )


def test_dashboard_form_errors_are_translated(operator: Any) -> None:
    client, token = csrf_client(operator, HTTP_ACCEPT_LANGUAGE="fr")
    form = {"csrfmiddlewaretoken": token, "target": "group", "group": "nobody", "reason": "x"}

    unknown = _page(client.post("/revocations/", form).content.decode())
    no_scope = _page(client.post("/revocations/", {**form, "target": "scope"}).content.decode())
    no_reason = _page(client.post("/revocations/", {**form, "reason": ""}).content.decode())

    assert "groupe inconnu &#x27;nobody&#x27;" in unknown
    assert "Choisissez un périmètre." in no_scope
    assert "Ce champ est obligatoire." in no_reason  # Django's own catalogue


def test_the_dashboard_names_targets_and_states_in_the_readers_language(operator: Any) -> None:
    Group.objects.create(name="ops")
    services.revoke_sessions(group="ops", reason="test")

    page = _page(
        logged_in_client(operator).get("/revocations/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    )

    assert "<td>grupo ops</td>" in page
    assert 'data-field="state">pendiente</span>' in page
    # The script shows the states it polls with these words (it gets the bare state).
    states = json.loads(html.unescape(re.search(r'data-states="([^"]+)"', page)[1]))  # type: ignore[index]
    assert states == {
        "pending": "pendiente",
        "running": "en curso",
        "done": "completada",
        "failed": "fallida",
    }


@pytest.mark.usefixtures("no_rate_limit")
def test_api_errors_are_translated_but_data_is_not(client: Client, operator: Any) -> None:
    anonymous = client.get("/api/sessions/", HTTP_ACCEPT_LANGUAGE="de")
    Group.objects.create(name="ops")
    staff, token = csrf_client(operator, HTTP_ACCEPT_LANGUAGE="de")

    def start(body: dict[str, Any]) -> Any:
        return staff.post(
            "/api/revocations",
            json.dumps(body),
            content_type="application/json",
            headers={"X-CSRFToken": token},
        )

    assert (anonymous.status_code, anonymous.json()) == (401, {"detail": "nicht angemeldet"})
    unknown = start({"group": "nobody"})
    assert (unknown.status_code, unknown.json()) == (422, {"detail": "unbekannte Gruppe 'nobody'"})
    # A field of the answer is data that scripts compare: never translated.
    accepted = start({"group": "ops"})
    assert (accepted.status_code, accepted.json()["target"]) == (202, "group ops")


def test_admin_actions_and_labels_are_translated(client: Client, make_user: Any) -> None:
    client.force_login(make_user(is_staff=True, is_superuser=True))

    users = _page(client.get("/admin/auth/user/", HTTP_ACCEPT_LANGUAGE="de").content.decode())
    sessions = _page(
        client.get("/admin/revocation/usersession/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    )

    assert "Abmeldung der ausgewählten Benutzer erzwingen" in users
    assert "Ausgewählte Sitzungen beenden" in sessions
    assert "Benutzersitzungen" in sessions  # the model's verbose name
    assert "Zuletzt aktiv" in sessions  # a column: the field's verbose name


def test_command_help_is_in_the_active_language() -> None:
    command = load_command_class("revocation", "revoke_sessions")

    with translation.override("de"):
        german = " ".join(
            command.create_parser("manage.py", "revoke_sessions").format_help().split()
        )
    english = " ".join(command.create_parser("manage.py", "revoke_sessions").format_help().split())

    assert "Widerruft die Sitzungen von Benutzern, einer Gruppe" in german
    assert "alle Mitglieder dieser Gruppe" in german
    # The class keeps the original: a later parser in English is English again.
    assert "Revoke the sessions of users, a group" in english
    assert "every member of this group" in english


def test_command_lines_are_translated_but_json_is_not() -> None:
    Group.objects.create(name="ops")
    revocation = services.revoke_sessions(group="ops")

    with translation.override("de"):
        human, _ = run_command("revocation_status", str(revocation.pk))
        machine, _ = run_command("revocation_status", str(revocation.pk), "--json")

    assert human.startswith(f"Widerruf #{revocation.pk} ausstehend: Gruppe ops, Benutzer 0/0")
    status = json.loads(machine.splitlines()[-1])
    assert (status["state"], status["target"]) == ("pending", "group ops")


def test_times_are_in_the_readers_time_zone_and_format(make_user: Any) -> None:
    user = make_user()
    client = logged_in_client(user)
    signed_in = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
    UserSession.objects.filter(user=user).update(created_at=signed_in)

    def exact_time(**headers: Any) -> str:
        """Return the hover text of the sign-in time on the sessions page."""
        page = client.get("/sessions/", **headers).content.decode()
        found = re.search(r'<time datetime="2026-01-15T10:30:00\+00:00" title="([^"]+)"', page)
        assert found, page
        return found[1]

    assert exact_time() == "Jan. 15, 2026, 10:30 a.m. UTC"
    # What a project's middleware does with timezone.activate() for its user.
    with timezone.override(ZoneInfo("Asia/Tokyo")):
        assert exact_time(HTTP_ACCEPT_LANGUAGE="de") == "15. Januar 2026 19:30 JST"
        assert exact_time() == "Jan. 15, 2026, 7:30 p.m. JST"
