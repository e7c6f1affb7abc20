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
# Go keeps its build cache where it always does (asked before XDG_CACHE_HOME moves it below),
# so every clone and worktree on a machine shares one cache.
GO_BUILD_CACHE := $(shell go env GOCACHE 2>/dev/null)
ifneq ($(GO_BUILD_CACHE),)
export GOCACHE := $(GO_BUILD_CACHE)
endif
export XDG_CACHE_HOME := $(ROOT)/.cache
# Nothing may leave loopback: no EC2 metadata probe, a region set for every SDK.
export AWS_EC2_METADATA_DISABLED := true
export AWS_REGION ?= eu-west-1
export CARGO_TERM_COLOR ?= never

include tools/pulumi/versions.mk
# The Pulumi CLI's version: what tools/pulumi/go.mod requires of pulumi/pkg/v3.
PULUMI_VERSION := $(shell grep -oE 'github.com/pulumi/pulumi/pkg/v3 v[0-9][0-9.]*' tools/pulumi/go.mod | cut -d' ' -f2 | tr -d v)

FUNCTIONS := producer relay target
ZIPS := $(foreach f,$(FUNCTIONS),target/lambda/$(f)/bootstrap.zip)

.PHONY: help tools build test demo unit lint bench go-check generate

help:
	@echo "make demo   run producer -> Kinesis -> relay -> (AssumeRole) -> target locally, two accounts"
	@echo "make test   run every test (lint, unit, mutants, infra checks, Pulumi engine, end to end)"
	@echo "make build  build target/lambda/{producer,relay,target}/bootstrap.zip (x86_64)"
	@echo "make generate  write what is printed from the program: docs/reference/*.md and Pulumi.yaml's config: block"
	@echo "make bench  start-up time and peak memory of the release binaries; the relay's warm throughput beside Python's; the idempotency store's cost per delivery"
	@echo "make check-pulumi  both stacks through the real Pulumi CLI (preview, up, destroy) with a stand-in aws provider"
	@echo "make soak   TOTAL records (100000) through the local run under a fault matrix (FAULTS=default|none|class:rate,...); fails if one is lost"

$(VENV)/.installed: tools/requirements.txt pyproject.toml
	@{ cargo fmt --version && cargo clippy --version; } >/dev/null 2>&1 || \
	  rustup component add rustfmt clippy || \
	  { echo "make: rustfmt and clippy are needed: rustup component add rustfmt clippy"; exit 1; }
	@python3 -m venv --help >/dev/null 2>&1 || { echo "make: python3 venv is needed (Debian/Ubuntu: apt-get install python3-venv)"; exit 1; }
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	mkdir -p $(TOOLS)/bin
	printf '#!/bin/sh\nexec "%s" -m ziglang "$$@"\n' "$(PY)" > $(TOOLS)/bin/zig
	chmod +x $(TOOLS)/bin/zig
	touch $@

tools: $(VENV)/.installed

# One cargo-lambda call builds all three so the SDK crates compile once. relayctl (the operator's
# command, run on a workstation) is a debug build: enough for the e2e test, and cheap.
build: tools
	cargo lambda build --release --output-format zip $(foreach f,$(FUNCTIONS),--bin $(f))
	cargo build --locked -p relayctl
	@ls -l $(ZIPS)

unit:
	cargo test --workspace --locked

# The generated files, each printed from its one source (tests fail when a copy differs):
# docs/reference/{config-keys,environment,alarms,metrics,dead-letters}.md, and the `config:` block
# that ends Pulumi.yaml.
generate:
	cargo build --quiet --locked -p infra
	mkdir -p docs/reference
	target/debug/infra reference docs/reference
	{ sed '/^config:/,$$d' Pulumi.yaml; target/debug/infra --pulumi-yaml-config; } > Pulumi.yaml.new
	mv Pulumi.yaml.new Pulumi.yaml

# No Rust module refers to a module above it (its parent, any ancestor, the crate root), and no
# two modules refer to each other, directly or round a cycle (tools/check_module_imports.py).
MODULE_CHECK := tools/check_module_imports.py tools/test_check_module_imports.py

lint: $(TOOLS)/bin/actionlint-$(ACTIONLINT_VERSION)
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	$(TOOLS)/bin/actionlint .github/workflows/*.yml
	@$(MAKE) --no-print-directory $(VENV)/.installed
	$(VENV)/bin/ruff check local_run tests/e2e tests/docs tests/vectors bench infra/checks tools/pulumi $(MODULE_CHECK)
	$(VENV)/bin/ruff format --check local_run tests/e2e tests/docs tests/vectors bench infra/checks tools/pulumi $(MODULE_CHECK)
	$(VENV)/bin/mypy
	$(PY) -m pytest tests/docs tests/vectors tools/test_check_module_imports.py -q -p no:cacheprovider
	$(PY) tools/check_module_imports.py

$(TOOLS)/bin/actionlint-$(ACTIONLINT_VERSION):
	@command -v go >/dev/null || { echo "make: Go is needed to build actionlint (https://go.dev/dl/)"; exit 1; }
	mkdir -p $(TOOLS)/bin
	GOBIN=$(TOOLS)/bin CGO_ENABLED=0 go install github.com/rhysd/actionlint/cmd/actionlint@v$(ACTIONLINT_VERSION)
	touch $@

# Start-up time (process start -> first response) and peak RSS of each release binary; then the
# relay's warm throughput beside the Python relay's, and key-ordered delivery against a slow
# target (bench/throughput.py; BENCH_ARGS passes options, e.g. BENCH_ARGS="--part slow"); then
# the DynamoDB idempotency store's round trips and added time per delivery, against moto
# (bench/idempotency.py).
BENCH_ARGS ?=
bench: build
	$(PY) bench/startup.py --runs 10
	$(PY) -m bench.throughput $(BENCH_ARGS)
	$(PY) -m bench.idempotency

# mutants after unit: a mutant is only worth testing once the unmutated tests pass.
test: tools lint unit mutants check-infra check-pulumi e2e

# ---- infra checks (owned by infra/): conformance with pulumi-aws, IAM lint + evaluation ----
.PHONY: check-infra
# Renders both stacks from the committed example configs (plus an alarm e-mail address, so the
# optional subscription is checked too, and the target with the sample's effects table, a test
# device the example leaves off, so its statement is checked too), then: conformance with the pinned
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

# The pinned pulumi-aws version, read from the program's one definition of it.
AWS_PIN   := $(shell sed -n 's/^pub const PULUMI_AWS_VERSION: &str = "\(.*\)";/\1/p' infra/src/template.rs)
AWS_WHEEL := $(ROOT)/.cache/pulumi-aws/pulumi_aws-$(AWS_PIN)-py3-none-any.whl

$(AWS_WHEEL): | $(VENV)/.installed
	$(PY) -m pip download --quiet --no-deps --disable-pip-version-check -d $(dir $@) "pulumi-aws==$(AWS_PIN)"

check-infra: tools $(NODE_TOOLS)/.installed $(AWS_WHEEL)
	cargo build --quiet --locked -p infra
	@set -euo pipefail; \
	pin=$$(target/debug/infra --pulumi-aws-version); \
	wheel=$(AWS_WHEEL); \
	rm -rf $(INFRA_CHECK) && mkdir -p $(INFRA_CHECK); \
	for stack in source target; do \
	  extra=; if [ $$stack = target ]; then extra="--set sampleEffectsTable=true"; fi; \
	  target/debug/infra render --stack $$stack --stack-file Pulumi.$$stack.yaml \
	    --set externalId=example-external-id-0123456789 --set alarmEmail=alarms@example.com \
	    $$extra > $(INFRA_CHECK)/$$stack.json; \
	done; \
	$(PY) infra/checks/conformance.py --wheel "$$wheel" --version "$$pin" --self-test \
	  $(INFRA_CHECK)/source.json $(INFRA_CHECK)/target.json; \
	cp infra/checks/iam.mjs $(NODE_TOOLS)/iam.mjs; \
	node $(NODE_TOOLS)/iam.mjs extract $(INFRA_CHECK)/policies $(INFRA_CHECK)/source.json $(INFRA_CHECK)/target.json; \
	$(PY) infra/checks/lint.py $(INFRA_CHECK)/policies; \
	node $(NODE_TOOLS)/iam.mjs simulate $(INFRA_CHECK)/source.json $(INFRA_CHECK)/target.json

# ---- the real Pulumi engine (owned by tools/pulumi/) ----
.PHONY: check-pulumi pulumi-tools
# The Pulumi CLI and its YAML language host, built from their Go modules (pins: tools/pulumi/go.mod
# and tools/pulumi/versions.mk) into .tools/bin, rebuilt only when a pin changes. Go keeps its
# module and build caches where it always does, so a rebuild after a pin change is incremental.
PULUMI_HOME_DIR := $(ROOT)/.cache/pulumi-home
STANDIN_DIR     := $(TOOLS)/pulumi-standin
AWS_SCHEMA      := $(ROOT)/.cache/pulumi-aws/schema-$(AWS_PIN).json

go-check:
	@command -v go >/dev/null || { echo "make: Go 1.26 or newer is needed to build the Pulumi CLI for the tests (https://go.dev/dl/)"; exit 1; }

$(TOOLS)/bin/pulumi: tools/pulumi/go.mod tools/pulumi/go.sum | go-check
	mkdir -p $(TOOLS)/bin
	cd tools/pulumi && CGO_ENABLED=0 go build -o $@ \
	  -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$(PULUMI_VERSION)" \
	  github.com/pulumi/pulumi/pkg/v3/cmd/pulumi

$(TOOLS)/bin/.pulumi-language-yaml-$(PULUMI_YAML_VERSION): | go-check
	mkdir -p $(TOOLS)/bin
	GOBIN=$(TOOLS)/bin CGO_ENABLED=0 go install \
	  -ldflags "-X github.com/pulumi/pulumi-yaml/pkg/version.Version=v$(PULUMI_YAML_VERSION)" \
	  github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml@v$(PULUMI_YAML_VERSION)
	touch $@

pulumi-tools: $(TOOLS)/bin/pulumi $(TOOLS)/bin/.pulumi-language-yaml-$(PULUMI_YAML_VERSION)

# The pinned pulumi-aws schema, derived from its Python SDK wheel (the Go module that ships
# schema.json is not served by the module proxy; see tools/pulumi/README.md).
$(AWS_SCHEMA): $(AWS_WHEEL) tools/pulumi/schema_from_wheel.py
	$(PY) tools/pulumi/schema_from_wheel.py --wheel $(AWS_WHEEL) --version $(AWS_PIN) --out $@

# Runs both stacks through the real CLI with the stand-in aws provider: one line per step.
check-pulumi: tools build pulumi-tools $(AWS_SCHEMA)
	cargo build --quiet --locked -p infra
	$(PY) -m pytest tools/pulumi -q -p no:cacheprovider
	cd tools/pulumi && go vet ./standin && go test ./standin
	rm -rf $(STANDIN_DIR) $(PULUMI_HOME_DIR) && mkdir -p $(STANDIN_DIR)
	cd tools/pulumi && CGO_ENABLED=0 go build -o $(STANDIN_DIR)/pulumi-resource-aws ./standin
	cp $(AWS_SCHEMA) $(STANDIN_DIR)/schema.json
	tar -czf $(STANDIN_DIR).tgz -C $(STANDIN_DIR) pulumi-resource-aws schema.json
	PULUMI_HOME=$(PULUMI_HOME_DIR) PULUMI_SKIP_UPDATE_CHECK=true $(TOOLS)/bin/pulumi plugin install \
	  resource aws $(AWS_PIN) --file $(STANDIN_DIR).tgz
	$(PY) tools/pulumi/check_pulumi.py --pulumi-home $(PULUMI_HOME_DIR) --work $(ROOT)/.cache/check-pulumi

# ---- local two-account run (owned by local_run/ and tests/e2e/) ----
.PHONY: e2e soak
# TICKS, INTERVAL (s), RECORDS (per tick) override the defaults: make demo TICKS=200 RECORDS=5
demo: build
	cargo build --quiet --locked -p infra
	cd $(ROOT) && TICKS="$(TICKS)" INTERVAL="$(INTERVAL)" RECORDS="$(RECORDS)" $(PY) -m local_run.demo

e2e: build
	cargo build --quiet --locked -p infra
	cd $(ROOT) && $(PY) -m pytest tests/e2e -q -p no:cacheprovider

# Not part of make test (minutes, not seconds). TOTAL (default 100000), FAULTS (default, none, or
# class:rate,... — the classes: python -m local_run.soak --help), SEED: make soak TOTAL=20000 FAULTS=none.
# SLOW_TARGET_MS=ms: a target that spends ms per record, the soak run without and with key-ordered
# delivery (RECORDS_PER_INVOCATION, the stack's relayMaxRecordsPerInvocation) and compared.
# AGGREGATED=share: that share of the soak's own records written inside KPL aggregates.
# LARGE=share: that share of its own plain records written over 1 MiB (the stream set to take them).
soak: build
	cargo build --quiet --locked -p infra
	cd $(ROOT) && TOTAL="$(TOTAL)" FAULTS="$(FAULTS)" SEED="$(SEED)" SLOW_TARGET_MS="$(SLOW_TARGET_MS)" \
	  RECORDS_PER_INVOCATION="$(RECORDS_PER_INVOCATION)" AGGREGATED="$(AGGREGATED)" LARGE="$(LARGE)" $(PY) -m local_run.soak

# ---- mutation testing (owned by .cargo/mutants.toml: the files, and each excluded mutant's reason) ----
.PHONY: mutants
# cargo-mutants, pinned, installed into .tools/cargo; a new pin installs the new version. A debug
# build installs in a third of the time, and its own work is nothing next to the builds it runs.
CARGO_MUTANTS_VERSION := 27.1.0
CARGO_MUTANTS := $(TOOLS)/cargo/bin/cargo-mutants
MUTANTS_DIR   := $(ROOT)/.cache/mutants
# Mutants tested at once, each job in its own copy of the tree (one per core here).
MUTANTS_JOBS  ?= 2
# More cargo-mutants options, e.g. one file's mutants only: make mutants MUTANTS_ARGS="--re ^functions/relay/src/batch.rs"
MUTANTS_ARGS  ?=

$(TOOLS)/cargo/.cargo-mutants-$(CARGO_MUTANTS_VERSION):
	cargo install --locked --quiet --debug cargo-mutants@$(CARGO_MUTANTS_VERSION) --root $(TOOLS)/cargo
	touch $@

# Every mutant of the files in .cargo/mutants.toml must fail a test: exits non-zero when one
# is missed (2) or times out (3), after a summary per file. Job k mutates, in place, its own
# scratch copy of this tree (.cache/mutants/tree-k), never this tree, so an interrupted run
# cannot leave a mutated file here. Each run copies in the files git would commit that differ
# from the copy (with a new mtime, so cargo rebuilds what an interrupted run left mutated) and
# removes the ones gone from here. A copy keeps its own target/, seeded once from this tree's
# target/debug, so only the workspace's own crates are built the first time.
mutants: $(TOOLS)/cargo/.cargo-mutants-$(CARGO_MUTANTS_VERSION)
	@set -euo pipefail; mkdir -p $(MUTANTS_DIR); \
	git ls-files -z --cached --others --exclude-standard > $(MUTANTS_DIR)/files; \
	for k in $$(seq 0 $$(($(MUTANTS_JOBS) - 1))); do \
	  tree=$(MUTANTS_DIR)/tree-$$k; mkdir -p $$tree; \
	  while IFS= read -r -d '' f; do \
	    [ -f "$$f" ] || continue; printf '%s\n' "$$f"; \
	    cmp -s "$$f" "$$tree/$$f" || install -D -m "$$(stat -c %a "$$f")" "$$f" "$$tree/$$f"; \
	  done < $(MUTANTS_DIR)/files | LC_ALL=C sort > $(MUTANTS_DIR)/kept; \
	  (cd $$tree && find . -path ./target -prune -o -type f -printf '%P\n' | LC_ALL=C sort) \
	    | LC_ALL=C comm -23 - $(MUTANTS_DIR)/kept | (cd $$tree && xargs -r -d '\n' rm -f --); \
	  if [ ! -d $$tree/target/debug ] && [ -d target/debug/deps ]; then \
	    mkdir -p $$tree/target/debug; \
	    cp -a target/debug/deps target/debug/build target/debug/.fingerprint $$tree/target/debug/; \
	  fi; \
	done
	@set -uo pipefail; jobs=(); \
	for k in $$(seq 0 $$(($(MUTANTS_JOBS) - 1))); do \
	  (cd $(MUTANTS_DIR)/tree-$$k && $(CARGO_MUTANTS) mutants --in-place \
	    --shard $$k/$(MUTANTS_JOBS) --sharding round-robin $(MUTANTS_ARGS) --output $(MUTANTS_DIR)/shard-$$k 2>&1 \
	    | sed -u "s/^/[$$k] /") & jobs+=($$!); \
	done; \
	status=0; for job in "$${jobs[@]}"; do wait $$job || status=$$?; done; \
	printf '%-36s %7s %7s %8s %9s\n' file caught missed timeout unviable; \
	for k in $$(seq 0 $$(($(MUTANTS_JOBS) - 1))); do for outcome in caught missed timeout unviable; do \
	  sed "s/:.*//; s/^/$$outcome /" $(MUTANTS_DIR)/shard-$$k/mutants.out/$$outcome.txt 2>/dev/null || true; \
	done; done | awk '{ n[$$2]++; c[$$2 " " $$1]++ } END { for (f in n) printf "%-36s %7d %7d %8d %9d\n", \
	  f, c[f " caught"], c[f " missed"], c[f " timeout"], c[f " unviable"] }' | LC_ALL=C sort; \
	exit $$status
