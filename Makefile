# kato-web: `make run` starts the service on SQLite; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: run test migrate venv dev-venv clean bench

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements.txt $(VENV)/.installed
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed
dev-venv: $(VENV)/.installed-dev

migrate: venv
	$(PY) -m kato_web migrate

run: migrate
	$(VENV)/bin/gunicorn -c gunicorn.conf.py wsgi:app

test: dev-venv
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache
