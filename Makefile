# gpuflow: `make demo` runs one rental end to end on a local devnet; `make test` runs
# every test (forge, cargo, end to end). Both install what they need first.

SHELL := /bin/bash
# One warm build directory outside the checkout, shared by every clone on this machine.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/gpuflow/target
BIN := $(CARGO_TARGET_DIR)/debug
FORGE := ./node_modules/@foundry-rs/forge-linux-amd64/bin/forge

.PHONY: demo test build contracts deps test-contracts test-rust bench bench-smoke gpu-bundle gpu-check clean

## deps: install Foundry, solc and the Solidity libraries from npm (pinned, lock file)
deps: contracts/node_modules/.package-lock.json

contracts/node_modules/.package-lock.json: contracts/package.json contracts/package-lock.json
	cd contracts && npm ci --no-audit --no-fund
	@touch $@

## contracts: compile the Solidity contracts; the Rust bindings read their artifacts
contracts: deps
	cd contracts && $(FORGE) build

## build: contracts first (so no Rust binding can see a stale ABI), then every binary
build: contracts
	cargo build --workspace --bins --locked

## demo: devnet up, search, rent, workload running, stop early, exact amounts, shut down
demo: build
	GPUFLOW_BIN_DIR=$(BIN) bash deploy/demo.sh

test-contracts: contracts
	cd contracts && $(FORGE) test

## test-rust: every cargo test, with a real Docker engine, base image and registry for the
## container tests (tests/docker/engine.sh starts what is missing and stops it after)
ENGINE_ENV := $(CARGO_TARGET_DIR)/docker-engine.env
# What tests leave for people to look at (the marketplace page's screenshots).
export GPUFLOW_ARTIFACTS ?= $(CARGO_TARGET_DIR)/artifacts
test-rust: build
	bash tests/docker/engine.sh up $(ENGINE_ENV)
	set -a && . $(ENGINE_ENV) && set +a && GPUFLOW_BIN_DIR=$(BIN) cargo test --workspace --locked; \
	  status=$$?; bash tests/docker/engine.sh down $(ENGINE_ENV); exit $$status

## test: forge tests, cargo tests, the end-to-end tests
test: test-contracts test-rust

## bench: measure every figure of BENCHMARKS.md on this machine at full size (release builds;
## escrow gas comes from contracts/script/measure-gas.sh, which gpuflow-bench runs; the
## container figure runs on the Docker engine of tests/docker/engine.sh)
BENCH_BIN := $(CARGO_TARGET_DIR)/release
bench: contracts
	cargo build --release --locked -p gpuflow-node -p gpuflow-provider -p gpuflow-cli -p gpuflow-bench
	bash tests/docker/engine.sh up $(ENGINE_ENV)
	set -a && . $(ENGINE_ENV) && set +a && $(BENCH_BIN)/gpuflow-bench all --out BENCHMARKS.md; \
	  status=$$?; bash tests/docker/engine.sh down $(ENGINE_ENV); exit $$status

## bench-smoke: the same benchmarks at toy sizes, in a couple of minutes (not part of `make test`)
bench-smoke: contracts
	cargo build --release --locked -p gpuflow-node -p gpuflow-provider -p gpuflow-cli -p gpuflow-bench
	bash tests/docker/engine.sh up $(ENGINE_ENV)
	set -a && . $(ENGINE_ENV) && set +a && \
	  $(BENCH_BIN)/gpuflow-bench all --smoke --out $(CARGO_TARGET_DIR)/bench-smoke.md; \
	  status=$$?; bash tests/docker/engine.sh down $(ENGINE_ENV); exit $$status
	@cat $(CARGO_TARGET_DIR)/bench-smoke.md

## gpu-bundle: stripped release binaries, anvil, deploy/gpu-smoke.sh and tests/gpu/challenge.sh
## in one archive, for a GPU machine with no network and no Rust (not part of `make test`)
GPU_BUNDLE := $(CARGO_TARGET_DIR)/gpuflow-gpu-smoke
gpu-bundle: contracts
	cargo build --release --locked -p gpuflow-cli -p gpuflow-node -p gpuflow-provider -p gpuflow-devnet
	rm -rf $(GPU_BUNDLE) && mkdir -p $(GPU_BUNDLE)/bin
	for b in gpuflow gpuflow-node gpuflow-provider gpuflow-devnet; do \
	  strip -o $(GPU_BUNDLE)/bin/$$b $(CARGO_TARGET_DIR)/release/$$b; done
	strip -o $(GPU_BUNDLE)/bin/anvil contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
	cp deploy/gpu-smoke.sh tests/gpu/challenge.sh $(GPU_BUNDLE)/
	tar -C $(CARGO_TARGET_DIR) -cJf $(GPU_BUNDLE).tar.xz gpuflow-gpu-smoke
	@ls -l $(GPU_BUNDLE).tar.xz

## gpu-check: the agent's CUDA path of the matrix challenge on this machine's GPUs, checked
## as a node checks it, with its throughput (needs an NVIDIA GPU; not part of `make test`)
gpu-check:
	cargo build --release --locked -p gpuflow-provider
	GPUFLOW_BIN_DIR=$(BENCH_BIN) bash tests/gpu/challenge.sh

clean:
	rm -rf contracts/out contracts/cache .devnet
	cargo clean
