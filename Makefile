# Helios task runner. Every recipe has a one-line description; `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo

.PHONY: help demo test stack-up stack-down lint unit image

help: ## List the recipes.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

demo: ## Bring up the real local stack and show Helios working against it.
	@e2e/demo

test: ## Everything CI runs: stack up, fmt, clippy, all tests; ends with a summary line.
	@e2e/run-tests

stack-up: ## Start (building on first use) the local stack; writes e2e/.stack/env.
	@e2e/stack up

stack-down: ## Stop every server the stack started.
	@e2e/stack down

image: ## Build the helios image here (no engine, no registry); import it into the real node (e2e/stack up-node).
	@e2e/image/build.sh

lint: ## rustfmt check and clippy with warnings as errors.
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit: ## Unit tests only (no servers needed).
	$(CARGO) test --workspace --lib --bins --locked
