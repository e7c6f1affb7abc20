# Two commands matter: `make demo` (the whole two-account data path, locally) and
# `make test` (every test). Both install what they need into ignored folders first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ROOT     := $(CURDIR)
TOOLS    := $(ROOT)/.tools
VENV     := $(TOOLS)/venv
PY       := $(VENV)/bin/python
# cargo-lambda finds zig on PATH; zig keeps its cache inside the project.
export PATH := $(TOOLS)/bin:$(VENV)/bin:$(PATH)
export XDG_CACHE_HOME := $(ROOT)/.cache
# Nothing may leave loopback: no EC2 metadata probe, a region set for every SDK.
export AWS_EC2_METADATA_DISABLED := true
export AWS_REGION ?= eu-west-1
export CARGO_TERM_COLOR ?= never

FUNCTIONS := producer relay target
ZIPS := $(foreach f,$(FUNCTIONS),target/lambda/$(f)/bootstrap.zip)

.PHONY: help tools build test demo unit lint bench

help:
	@echo "make demo   run producer -> Kinesis -> relay -> (AssumeRole) -> target locally, two accounts"
	@echo "make test   run every test (unit, infra checks, end to end)"
	@echo "make build  build target/lambda/{producer,relay,target}/bootstrap.zip (x86_64)"
	@echo "make bench  start-up time and peak memory of the release binaries"

$(VENV)/.installed: tools/requirements.txt
	@{ cargo fmt --version && cargo clippy --version; } >/dev/null 2>&1 || \
	  rustup component add rustfmt clippy || \
	  { echo "make: rustfmt and clippy are needed: rustup component add rustfmt clippy"; exit 1; }
	@python3 -m venv --help >/dev/null 2>&1 || { echo "make: python3 venv is needed (Debian/Ubuntu: apt-get install python3-venv)"; exit 1; }
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
	mkdir -p $(TOOLS)/bin
	printf '#!/bin/sh\nexec "%s" -m ziglang "$$@"\n' "$(PY)" > $(TOOLS)/bin/zig
	chmod +x $(TOOLS)/bin/zig
	touch $@

tools: $(VENV)/.installed

# One cargo-lambda call builds all three so the SDK crates compile once.
build: tools
	cargo lambda build --release --output-format zip $(foreach f,$(FUNCTIONS),--bin $(f))
	@ls -l $(ZIPS)

unit:
	cargo test --workspace --locked

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

# Start-up time (process start -> first response) and peak RSS of each release binary.
bench: build
	$(PY) bench/startup.py --runs 10

test: tools lint unit check-infra e2e

# ---- infra checks (owned by infra/): conformance with pulumi-aws, IAM lint + evaluation ----
.PHONY: check-infra
# Renders both stacks from the committed example configs, then: conformance with the pinned
# pulumi-aws SDK (its PyPI wheel, downloaded once into .cache/, read as a zip), parliament on
# every policy document, and iam-simulate (npm, pinned by infra/checks/package-lock.json,
# installed into .tools/node) on the trust and permission policies.
INFRA_CHECK := $(ROOT)/.cache/infra-check
NODE_TOOLS  := $(TOOLS)/node

$(NODE_TOOLS)/.installed: infra/checks/package.json infra/checks/package-lock.json
	mkdir -p $(NODE_TOOLS)
	cp infra/checks/package.json infra/checks/package-lock.json $(NODE_TOOLS)/
	npm ci --prefix $(NODE_TOOLS) --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

check-infra: tools $(NODE_TOOLS)/.installed
	cargo build --quiet --locked -p infra
	@set -euo pipefail; \
	pin=$$(target/debug/infra --pulumi-aws-version); \
	wheel=.cache/pulumi-aws/pulumi_aws-$$pin-py3-none-any.whl; \
	if [ ! -f "$$wheel" ]; then \
	  $(PY) -m pip download --quiet --no-deps --disable-pip-version-check -d .cache/pulumi-aws "pulumi-aws==$$pin"; \
	fi; \
	rm -rf $(INFRA_CHECK) && mkdir -p $(INFRA_CHECK); \
	for stack in source target; do \
	  $(PY) infra/checks/render.py $$stack > $(INFRA_CHECK)/$$stack.json; \
	done; \
	$(PY) infra/checks/conformance.py --wheel "$$wheel" --version "$$pin" --self-test \
	  $(INFRA_CHECK)/source.json $(INFRA_CHECK)/target.json; \
	cp infra/checks/iam.mjs $(NODE_TOOLS)/iam.mjs; \
	node $(NODE_TOOLS)/iam.mjs extract $(INFRA_CHECK)/policies $(INFRA_CHECK)/source.json $(INFRA_CHECK)/target.json; \
	$(PY) infra/checks/lint.py $(INFRA_CHECK)/policies; \
	node $(NODE_TOOLS)/iam.mjs simulate $(INFRA_CHECK)/source.json $(INFRA_CHECK)/target.json

# ---- local two-account run (owned by local/ and tests/e2e/) ----
.PHONY: e2e
# TICKS, INTERVAL (s), RECORDS (per tick) override the defaults: make demo TICKS=200 RECORDS=5
demo: build
	cd $(ROOT) && TICKS="$(TICKS)" INTERVAL="$(INTERVAL)" RECORDS="$(RECORDS)" $(PY) -m local.demo

e2e: build
	cd $(ROOT) && $(PY) -m pytest tests/e2e -q -p no:cacheprovider
