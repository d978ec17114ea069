# meshpath: every target does its own set-up, idempotently (see README "Quick start").
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := iproute2 nftables frr tcpdump python3 python3-venv python3-pip make
# promtool (the tests lint meshpath watch's metrics with it) comes in Debian's prometheus
# package; without its Recommends, which add node_exporter's daemon.
APT_NO_RECOMMENDS := prometheus
STAMP := $(VENV)/.installed

.PHONY: setup system venv test lint typecheck unit root-tests demo bench clean

setup: system venv

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

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

lint: venv
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: venv
	$(VENV)/bin/mypy

unit: venv
	$(VENV)/bin/pytest -q tests/unit

# The whole suite: lint, types, unit, then the namespace tiers (need root; skipped without).
test: setup lint typecheck
	$(VENV)/bin/pytest -q tests

demo: setup
	$(VENV)/bin/meshpath lab demo

# Route counts for bench/collect.py: make bench SIZES=10000,100000
SIZES ?= 10000,100000,1000000
bench: setup
	$(PY) bench/collect.py --sizes $(SIZES)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
