# gpuflow: `make demo` runs one rental end to end on a local devnet; `make test` runs
# every test (forge, cargo, end to end). Both install what they need first.

SHELL := /bin/bash
# One warm build directory outside the checkout, shared by every clone on this machine.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/gpuflow/target
BIN := $(CARGO_TARGET_DIR)/debug
FORGE := ./node_modules/@foundry-rs/forge-linux-amd64/bin/forge

.PHONY: demo test build contracts deps test-contracts test-rust bench clean

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

test-rust: build
	GPUFLOW_BIN_DIR=$(BIN) cargo test --workspace --locked

## test: forge tests, cargo tests, the end-to-end tests
test: test-contracts test-rust

## bench: gas of every escrow operation on anvil (limits enforced by the script)
bench: contracts
	cd contracts && bash script/measure-gas.sh

clean:
	rm -rf contracts/out contracts/cache .devnet
	cargo clean
