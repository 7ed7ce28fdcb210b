# The two commands of the README: `make run` and `make test`. Everything they need is
# installed here: Python packages into .venv, npm packages into node_modules (the
# browser client is copied to static/vendor/; eslint and typescript for `make lint-js`),
# Debian packages by scripts/system-deps.sh.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
PYTEST_ARGS ?=

.PHONY: run test test-fast bench install install-dev vendor system-deps clean

run: install vendor instance/secret_key
	@GATEWAY_SECRET_KEY="$${GATEWAY_SECRET_KEY:-$$(cat instance/secret_key)}" $(PY) wsgi.py

test: install-dev vendor system-deps lint
	$(PY) -m pytest $(PYTEST_ARGS)

# Lint before the suite: ruff (pyflakes, pycodestyle, import order, bugbear, pyupgrade)
# and mypy (strict on gateway/core) as configured in pyproject.toml, then the JS checks.
.PHONY: lint lint-py
lint: lint-py lint-js

lint-py: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The unit tests alone (tests/unit: no real process, no browser, no Redis or nginx), under a
# minute: the loop to work in. `make test` runs them too, with everything else.
test-fast: install-dev
	$(PY) -m pytest tests/unit -q $(PYTEST_ARGS)

# Several workers behind nginx on loopback (scripts/cluster.sh): Redis, WORKERS (3) gunicorn
# eventlet workers sharing instance/gateway.db, nginx/cluster.conf on PORT (8080). Ctrl-C stops it.
.PHONY: cluster
cluster: install vendor instance/secret_key
	@GATEWAY_SECRET_KEY="$${GATEWAY_SECRET_KEY:-$$(cat instance/secret_key)}" PY=$(PY) scripts/cluster.sh

# The benchmark of issue 6 (bench/README.md): about 15 minutes; BENCH_ARGS=--quick for a
# 45-second smoke run. Results in bench/results/latest.md and latest.json.
BENCH_ARGS ?=
bench: install node_modules/.installed
	$(PY) bench/run.py -v $(BENCH_ARGS)

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(PIP) install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PIP) install -q -r requirements-dev.txt
	touch $(VENV)/.runtime $@

# The browser JavaScript (static/, native ES modules, no build step): eslint's recommended
# rules (eslint.config.js), and tsc checking the JSDoc types (jsconfig.json; emits nothing).
.PHONY: lint-js
lint-js: node_modules/.installed
	npx --no-install eslint static
	npx --no-install tsc -p jsconfig.json

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

vendor: static/vendor/socket.io.min.js

static/vendor/socket.io.min.js: node_modules/.installed
	mkdir -p static/vendor
	cp node_modules/socket.io-client/dist/socket.io.min.js node_modules/socket.io-client/dist/socket.io.min.js.map static/vendor/

# A random secret for the embedded server, made once and kept out of git.
instance/secret_key:
	mkdir -p instance
	umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(48))' > $@

system-deps:
	scripts/system-deps.sh

clean:
	rm -rf $(VENV) node_modules static/vendor .pytest_cache
