# meshpath: every target does its own set-up, idempotently (see README "Quick start").
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := iproute2 nftables frr tcpdump python3 python3-venv python3-pip make
# The lab's Worker runtime: Debian's Node.js and npm install the pinned workerd. Installed
# only when `node`/`npm` are missing (NodeSource's nodejs bundles npm and conflicts with
# Debian's npm package, so dpkg's view is not the test).
NODE_APT_PACKAGES := nodejs npm
# promtool (the tests lint meshpath watch's metrics with it) comes in Debian's prometheus
# package; without its Recommends, which add node_exporter's daemon.
APT_NO_RECOMMENDS := prometheus
STAMP := $(VENV)/.installed
# workerd, pinned by the lockfile that ships in the package, installed with `npm ci` into
# the venv; meshpath finds it at <sys.prefix>/workerd (see meshpath/lab/worker/runtime.py).
WORKERD_SRC := src/meshpath/lab/worker
WORKERD_DIR := $(VENV)/workerd
WORKERD_STAMP := $(WORKERD_DIR)/.installed

.PHONY: setup system node venv workerd test lint typecheck unit root-tests demo bench clean dist sanity

setup: system node venv

# System packages: installed only when missing, so a second run touches nothing.
system:
	@missing=""; bare=""; for p in $(APT_PACKAGES) $(APT_NO_RECOMMENDS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" && continue; \
	  case " $(APT_NO_RECOMMENDS) " in *" $$p "*) bare="$$bare $$p";; *) missing="$$missing $$p";; esac; \
	done; \
	if [ -n "$$missing$$bare" ]; then \
	  echo "installing:$$missing$$bare"; \
	  apt-get update -qq || exit 1; \
	  if [ -n "$$missing" ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing || exit 1; fi; \
	  if [ -n "$$bare" ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$bare || exit 1; fi; \
	fi

node:
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
	  echo "installing: $(NODE_APT_PACKAGES)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(NODE_APT_PACKAGES); \
	fi

venv: $(STAMP) workerd

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

workerd: $(WORKERD_STAMP)

# npm ci: exactly the lockfile's versions; no install scripts (the platform package
# already holds the binary). Re-run only when the lockfile changes.
$(WORKERD_STAMP): $(WORKERD_SRC)/package.json $(WORKERD_SRC)/package-lock.json | $(STAMP)
	@command -v npm >/dev/null || { echo "npm not found: run 'make setup' (installs $(NODE_APT_PACKAGES))"; exit 1; }
	@mkdir -p $(WORKERD_DIR)
	cp $(WORKERD_SRC)/package.json $(WORKERD_SRC)/package-lock.json $(WORKERD_DIR)/
	cd $(WORKERD_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

lint: venv
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: venv
	$(VENV)/bin/mypy

unit: venv
	$(VENV)/bin/pytest -q tests/unit

# ansible-test sanity on the Ansible collection, each test in a venv of its own (--venv).
# ansible-test fetches get-pip.py from ci-files.testing.ansible.com unless a copy is cached
# in ~/.ansible/test/cache: tests/ansible/get_pip.py (ensurepip, then pip from the package
# index) goes there, under a HOME inside the venv, so nothing outside the repository is
# touched. ~95 s the first time (venvs and their requirements), ~25 s after.
SANITY_HOME = $(abspath $(VENV))/ansible-test-home
SANITY_PY := 3.11
sanity: venv
	@pip=$$($(PY) -c 'from types import SimpleNamespace as N; from ansible_test._internal.python_requirements import get_venv_packages as g; print(g(N(version="$(SANITY_PY)"))["pip"].replace(".", "_"))') && \
	mkdir -p $(SANITY_HOME)/.ansible/test/cache && \
	cp tests/ansible/get_pip.py $(SANITY_HOME)/.ansible/test/cache/get_pip_$$pip.py
	cd ansible_collections/meshpath/connector && \
	  HOME=$(SANITY_HOME) $(abspath $(VENV))/bin/ansible-test sanity --venv --python $(SANITY_PY)

# The whole suite: lint, types, unit, then the namespace tiers (need root; skipped without).
# Three pytest runs at once (issue 18: make test under 6 minutes): the pure tiers are
# CPU-bound, the namespace tiers mostly wait on the kernel, FRR, TCP and BGP timers, so on
# 2 cores they overlap well; the namespace tests run in two pytest processes that share
# their modules as they go (tests/conftest.py --claim-dir: each module runs whole in the
# process that claims it first, so the two finish close together; each module builds
# labs of its own, never shared). Each run's output is
# printed whole at the end; the exit status is non-zero if any failed (pytest's "no
# tests" counts as a failure).
TIER_FAST := tests/unit tests/packaging tests/differential
TIER_NETNS := tests/lab tests/ansible
test: setup lint typecheck
	@dir=$$(mktemp -d); \
	$(VENV)/bin/pytest -q -p no:cacheprovider $(TIER_FAST) >"$$dir/fast" 2>&1 & f=$$!; \
	$(VENV)/bin/pytest -q -p no:cacheprovider --claim-dir "$$dir/claims" $(TIER_NETNS) >"$$dir/netns-1" 2>&1 & a=$$!; \
	$(VENV)/bin/pytest -q -p no:cacheprovider --claim-dir "$$dir/claims" $(TIER_NETNS) >"$$dir/netns-2" 2>&1 & b=$$!; \
	trap 'kill -INT $$f $$a $$b 2>/dev/null; wait; rm -rf "$$dir"; exit 130' INT TERM; \
	wait $$f; fc=$$?; wait $$a; ac=$$?; wait $$b; bc=$$?; \
	for tier in fast netns-1 netns-2; do echo "== $$tier"; cat "$$dir/$$tier"; done; \
	rm -rf "$$dir"; \
	echo "== exit: fast tier $$fc, namespace run 1 $$ac, namespace run 2 $$bc"; \
	test $$fc -eq 0 -a $$ac -eq 0 -a $$bc -eq 0

demo: setup
	$(VENV)/bin/meshpath lab demo

# Route counts for bench/collect.py: make bench SIZES=10000,100000
SIZES ?= 10000,100000,1000000
bench: setup
	$(PY) bench/collect.py --sizes $(SIZES)

# A wheel of this checkout in ./dist (offline: the venv's setuptools); `pipx install dist/*.whl`.
dist: venv
	$(PY) -m build --wheel --no-isolation --outdir dist .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache dist build
