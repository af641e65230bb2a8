# Every target bootstraps .venv/ from the lock file first, so a fresh clone
# needs only Python 3.11+, make and pip.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: run test test-django conformance mutation lint bench dist lock clean messages

$(STAMP): requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	touch $(STAMP)

# The translations: .po files in the tree (the app's and this project's pages'), compiled
# here to the .mo files Django reads, never committed. Babel's compiler is pure Python: a
# fresh machine needs no GNU gettext (only `makemessages`, a translator's tool, does).
CATALOGUES := revocation/locale config/locale
MO := $(patsubst %.po,%.mo,$(wildcard $(addsuffix /*/LC_MESSAGES/django.po,$(CATALOGUES))))

messages: $(MO)

%.mo: %.po | $(STAMP)
	$(BIN)/python -m babel.messages.frontend --quiet compile --domain django --input-file $< --output-file $@

run: $(STAMP) messages
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py setup_schedule
	$(BIN)/python manage.py seed_demo
	@echo ""
	@echo "  Service: http://127.0.0.1:$(PORT)/  (admin: http://127.0.0.1:$(PORT)/admin/)"
	@echo "  Log in as admin, alice or bob with password demo-pass-123"
	@echo ""
	DJANGO_SETTINGS_MODULE=config.settings.local PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start --port $(PORT) web worker beat

# The browser tests (tests/e2e) drive Debian's chromium; Playwright never downloads one.
test: $(STAMP) messages
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
		|| echo "!!! /usr/bin/chromium is missing and could not be installed (needs root and apt-get): the browser tests in tests/e2e will be SKIPPED !!!"
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/python -m pytest $(PYTEST_ARGS)

# The whole suite under each supported Django series (noxfile.py), e.g.
# make test-django DJANGO="4.2 5.1"; the database and broker come from the environment.
DJANGO ?= 4.2 5.1 5.2
test-django: $(STAMP) messages
	$(BIN)/nox --envdir .venv/nox -s $(foreach v,$(DJANGO),"tests(django='$(v)')") -- $(PYTEST_ARGS)

# Django's own sessions_tests and auth_tests, stock and with our app installed
# (conformance/run.py; the Django sources are cached under .venv/django-src/).
conformance: $(STAMP)
	$(BIN)/python -m conformance.run

# Mutation testing of the security core (mutation/run.py; slow, not part of CI): the
# embedded leg, then PostgreSQL + Redis for the mutants only they can kill. Its last
# line is `mutation score: N%`; tests/mutation-equivalents.md lists the equivalent survivors.
mutation: $(STAMP)
	$(BIN)/python -m mutation.run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports

bench: $(STAMP)
	@for script in bench/[!_]*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# The distribution of the reusable app (revocation/ alone): wheel and sdist in dist/.
dist: $(STAMP) messages
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*
	rm -rf *.egg-info

# Re-pin the lock file after editing pyproject.toml.
lock: $(STAMP)
	$(BIN)/pip-compile --extra service --extra dev --strip-extras --quiet -o requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) var mutants dist *.egg-info $(MO)
