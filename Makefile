# kato-web: `make run` starts the service on SQLite; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: run test test-packaging migrate venv dev-venv browser nginx clean bench bench-accuracy

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements-bench.txt requirements.txt $(VENV)/.installed
	$(PIP) install --quiet -r requirements-dev.txt
	$(PIP) install --quiet --no-deps -r requirements-bench.txt
	touch $@

venv: $(VENV)/.installed
dev-venv: $(VENV)/.installed-dev

migrate: venv
	$(PY) -m kato_web migrate

run: migrate
	$(VENV)/bin/gunicorn -c gunicorn.conf.py wsgi:app

# The admin UI's browser tests drive Debian's chromium (never a browser playwright downloads).
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

# Debian's nginx goes in front of gunicorn in the two-instance tests (tests/e2e/test_two_instances.py)
# and the slow-client test (deploy/nginx.conf, tests/e2e/test_nginx_slow_clients.py).
nginx:
	command -v nginx >/dev/null || (apt-get update && apt-get install -y nginx)

# The packaging tests (pip install into a fresh venv; a fresh clone's `make run`) build
# virtual environments of their own and use no test database: CI runs them once, after the
# suite on both databases (make test-packaging).
test: dev-venv browser nginx
	$(PY) -m pytest -m "not packaging" $(PYTEST_ARGS)

test-packaging: dev-venv
	$(PY) -m pytest -m packaging $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache build *.egg-info

# Load test: one Locust scenario, headless, against gunicorn on PostgreSQL (database
# LOAD_DB, pre-loaded with PATTERNS patterns for mix/predict); CSV stats go to
# bench/results/. SCENARIO=mix|observe|predict|batch|learn|health USERS=… DURATION=…
# (RATE=… offers a fixed load: tasks per second of all users together, instead of back to back.)
# (WORKERS=… THREADS=… override gunicorn's defaults; INSTANCES=2 puts two gunicorns behind nginx.)
SCENARIO ?= mix
USERS ?= 32
DURATION ?= 60s
PATTERNS ?= 10000
LOAD_DB ?= postgresql+psycopg://postgres@127.0.0.1:5432/kato_load
.PHONY: load
load: dev-venv
	$(PY) -m bench.run_load --scenario $(SCENARIO) --users $(USERS) --duration $(DURATION) \
		--patterns $(PATTERNS) --database-url $(LOAD_DB) $(if $(WORKERS),--workers $(WORKERS)) $(if $(RATE),--rate $(RATE)) \
		$(if $(THREADS),--threads $(THREADS)) $(if $(INSTANCES),--instances $(INSTANCES))

# Next-event accuracy vs CPT+ and baselines (docs/accuracy.md); a few minutes on 2 cores.
bench-accuracy: dev-venv
	$(PY) -m bench.accuracy
