# mqtt5c: build the library, the C examples, a demo, and the full test run.
#
#   make / make build   cargo build: target/<dir>/libmqtt5c.{so,a}, include/mqtt5c.h
#   make examples       examples-c/*.c -> build/ (linked to the library above)
#   make demo           deps, then a private mosquitto + sub -C 1 + pub, prints what arrived
#   make test           every stage of TEST_STAGES, each even when an earlier one
#                       failed: deps, build, all tests (C under valgrind, once),
#                       fmt, clippy, header drift check, examples and demo; ends
#                       with a one-line summary and fails when any stage failed
#   make soak           long variants of the fault tests (MQTT5C_SOAK=1): 10,000 QoS 1
#                       and 10,000 QoS 2 messages through five broker restarts
#   make bench          side-by-side benchmark with libmosquitto and Paho C (benches/run.sh)
#   make clean
#
# Variables: PROFILE (cargo profile, default dev), CARGO, CC, CFLAGS, BUILD_DIR,
# TEST_STAGES (the stages `make test` runs, in order).

PROFILE   ?= dev
CARGO     ?= cargo
CC        ?= cc
BUILD_DIR ?= build
CFLAGS    ?= -std=c11 -Wall -Wextra -Werror -O2 -g

# cargo puts profile "dev" (and "test") in target/debug, others in target/<name>.
PROFILE_DIR  := $(if $(filter dev test,$(PROFILE)),debug,$(if $(filter bench,$(PROFILE)),release,$(PROFILE)))
TARGET_DIR   := $(abspath $(or $(CARGO_TARGET_DIR),target))
LIB_DIR      := $(TARGET_DIR)/$(PROFILE_DIR)
PROFILE_FLAG := $(if $(filter dev,$(PROFILE)),,--profile $(PROFILE))

EXAMPLES := $(patsubst examples-c/%.c,$(BUILD_DIR)/%,$(wildcard examples-c/*.c))

.PHONY: all build examples demo test deps test-c header-check fmt-check clippy clean bench soak

all: build

build:
	$(CARGO) build $(PROFILE_FLAG)
	@test -f $(LIB_DIR)/libmqtt5c.so && test -f $(LIB_DIR)/libmqtt5c.a && test -f include/mqtt5c.h || \
		{ echo "build: expected $(LIB_DIR)/libmqtt5c.{so,a} and include/mqtt5c.h" >&2; exit 1; }

examples: build
	@mkdir -p $(BUILD_DIR)
	@set -e; for src in examples-c/*.c; do \
		exe=$(BUILD_DIR)/$$(basename $$src .c); \
		echo "$(CC) $$src -> $$exe"; \
		$(CC) $(CFLAGS) -pthread -Iinclude $$src -o $$exe \
			-L$(LIB_DIR) -lmqtt5c -Wl,-rpath,$(LIB_DIR); \
	done

demo: deps examples
	examples-c/demo.sh $(BUILD_DIR)

deps:
	scripts/ensure-deps.sh

# The C tests (tests/c_api.rs) run under valgrind; this is the only run of
# the test suite, so they run under valgrind exactly once. --no-fail-fast:
# a failing test binary does not hide the results of the others.
test-c: build
	MQTT5C_VALGRIND=1 $(CARGO) test --no-fail-fast $(PROFILE_FLAG)

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

# build.rs regenerates include/mqtt5c.h on every build: the committed header
# must be what the code generates.
header-check: build
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		git ls-files --error-unmatch include/mqtt5c.h >/dev/null 2>&1 || \
			{ echo "header-check: include/mqtt5c.h is not committed" >&2; exit 1; }; \
		git diff --exit-code -- include/mqtt5c.h || \
			{ echo "header-check: include/mqtt5c.h differs from the generated header; commit the regenerated one" >&2; exit 1; }; \
	else \
		echo "header-check: not a git work tree; skipped" >&2; \
	fi

TEST_STAGES := deps build test-c fmt-check clippy header-check examples demo

# Runs each stage in its own make, so that a failure stops that stage only:
# one failing test must not hide a clippy error or a broken demo.
test:
	@passed=""; failed=""; \
	for stage in $(TEST_STAGES); do \
		echo "==== make test: $$stage"; \
		if $(MAKE) --no-print-directory $$stage; then \
			passed="$$passed $$stage"; \
		else \
			failed="$$failed $$stage"; \
		fi; \
	done; \
	if [ -z "$$failed" ]; then \
		echo "make test: PASSED, all stages:$$passed"; \
	else \
		echo "make test: FAILED:$$failed; passed:$${passed:- none}"; \
		exit 1; \
	fi

bench:
	benches/run.sh $(BENCH_ARGS)

soak: deps
	MQTT5C_SOAK=1 $(CARGO) test $(PROFILE_FLAG) --test reliability -- --nocapture

clean:
	$(CARGO) clean
	rm -rf $(BUILD_DIR)
