# The two commands: `make run` (embedded default, no services) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
PORT ?= 8000
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install run test lint messages worker beat bench faults readme-pictures clean

# Creates the virtualenv and installs exactly what uv.lock pins.
$(VENV)/.installed: pyproject.toml uv.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv sync --frozen --inexact --quiet
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/python manage.py migrate --no-input
	PORT=$(PORT) $(BIN)/python manage.py ensure_demo
	PORT=$(PORT) $(BIN)/python manage.py run_embedded 127.0.0.1:$(PORT)

test: install
	NPS_MODE=test $(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	NPS_MODE=test $(BIN)/mypy .

# Regenerates locale/{ru,kk}/LC_MESSAGES/django.po from the sources (new msgids appear empty,
# gone ones are dropped) and compiles them to .mo; only locale/ is compiled, not the virtualenv.
MAKEMESSAGES_IGNORE := -i var -i node_modules -i test-results -i staticfiles
messages: install
	NPS_MODE=test $(BIN)/python manage.py makemessages -l ru -l kk --add-location file --no-obsolete $(MAKEMESSAGES_IGNORE)
	NPS_MODE=test $(BIN)/python manage.py compilemessages -l ru -l kk --ignore=$(VENV) --ignore=node_modules

# The production-shaped processes (set NPS_MODE=production and the services in .env).
worker: install
	$(BIN)/celery -A nps_saas worker -Q default,sends,alerts,rollups --loglevel=INFO

beat: install
	$(BIN)/celery -A nps_saas beat --loglevel=INFO --schedule var/celerybeat-schedule

bench: install
	NPS_MODE=test $(BIN)/python -m bench

# Fault injection (bench/faults.py): its own PostgreSQL, Redis, fake provider and app processes.
faults: install
	NPS_MODE=test $(BIN)/python -m bench.faults

# The README's pictures: the browser tests take them from the demo company (needs Chromium,
# PostgreSQL and Redis, as make test), then they are copied to docs/img/.
README_SHOTS := test-results/readme
readme-pictures: install
	rm -rf $(README_SHOTS)
	NPS_MODE=test REQUIRE_BROWSER=1 $(BIN)/pytest tests/browser/test_readme_pictures_browser.py --output $(README_SHOTS) $(PYTEST_ARGS)
	mkdir -p docs/img
	cp $(README_SHOTS)/*/dashboard.png $(README_SHOTS)/*/answer-phone.png docs/img/

clean:
	rm -rf $(VENV) staticfiles .mypy_cache .ruff_cache
