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

.PHONY: help tools build test demo unit clippy

help:
	@echo "make demo   run producer -> Kinesis -> relay -> (AssumeRole) -> target locally, two accounts"
	@echo "make test   run every test (unit, infra checks, end to end)"
	@echo "make build  build target/lambda/{producer,relay,target}/bootstrap.zip (x86_64)"

$(VENV)/.installed: tools/requirements.txt
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
	cargo test --workspace

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

test: tools unit check-infra e2e

# ---- infra checks (owned by infra/): conformance with pulumi-aws, IAM lint + evaluation ----
.PHONY: check-infra
check-infra: tools
	@echo "check-infra: not written yet" && false

# ---- local two-account run (owned by local/ and tests/e2e/) ----
.PHONY: e2e
demo: build
	@echo "demo: not written yet" && false

e2e: build
	@echo "e2e: not written yet" && false
