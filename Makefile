# mqtt5c: build the library, the C examples, a demo, the full test run, and
# install like a C library.
#
#   make / make build   cargo build (release by default): target/<dir>/libmqtt5c.{so,a},
#                       include/mqtt5c.h
#   make shlib          target/<dir>/libmqtt5c.so.X.Y.Z: the shared library as
#                       installed, with soname libmqtt5c.so.X and versioned symbols
#   make install        PREFIX (default /usr/local), DESTDIR, LIBDIR, INCLUDEDIR:
#                       libmqtt5c.so.X.Y.Z with the links libmqtt5c.so.X and
#                       libmqtt5c.so, libmqtt5c.a, mqtt5c.h, mqtt5c.hpp, pkgconfig/mqtt5c.pc,
#                       cmake/mqtt5c/mqtt5cConfig{,Version}.cmake; twice is harmless
#   make uninstall      removes what install installed (same variables)
#   make examples       examples-c/*.c -> build/ (linked to the library above, and
#                       to what a " * link: " line of the example's comment names),
#                       examples-cpp/*.cpp -> build/ (C++17, include/mqtt5c.hpp)
#   make demo           deps, then a private mosquitto + sub -C 1 + pub, prints what arrived
#   make test           every stage of TEST_STAGES, each even when an earlier one
#                       failed: deps, build, all tests (C under valgrind, once;
#                       tests/install.rs installs into a temporary prefix), fmt,
#                       clippy, header drift check, examples and demo, and the
#                       build without TLS and WebSocket (minimal); ends with a
#                       one-line summary and fails when any stage failed. The stages
#                       use TEST_PROFILE (dev), not PROFILE: no release build in CI
#   make bindings       the language bindings' tests: scripts/test-bindings.sh runs every
#                       bindings/*/run-tests.sh against target/<dir>/libmqtt5c.so
#   make minimal        the build without TLS and WebSocket (cargo
#                       --no-default-features): its unit tests, the TCP proxy tests,
#                       two C tests, clippy
#   make firmware       the smallest library for firmware (scripts/firmware.sh): without
#                       TLS and WebSocket, the cdylib alone, std rebuilt on nightly without
#                       its backtrace printer, profile firmware (opt-level "z"), RELR;
#                       target/firmware-build/<triple>/firmware/libmqtt5c{,.stripped}.so; checks the
#                       panic guard, runs the C API tests against it, prints the stripped
#                       size and fails above 1 MiB. Not a stage of `make test` (nightly,
#                       std and the crate built again, the tests' dependencies once
#                       more in target/firmware-build: 3.5 minutes the first time)
#   make asan           the C tests built with clang -fsanitize=address,undefined
#                       (MQTT5C_SANITIZE=1, tests/c_api.rs) against the ordinary
#                       library: a stage of `make test`
#   make fuzz           each cargo-fuzz target of fuzz/ for FUZZ_SECONDS (default 60)
#                       on nightly (installs cargo-fuzz when missing); `make test`
#                       replays the seeds on stable (tests/fuzz_corpus.rs)
#   make soak           long variants of the fault tests (MQTT5C_SOAK=1): 10,000 QoS 1
#                       and 10,000 QoS 2 messages through five broker restarts;
#                       50,000 connect/publish/disconnect cycles per part of
#                       tests/c/test_churn.c (10,000 in `make test`); the seeded
#                       fault simulation (tests/fault_simulation.rs) over 5,000
#                       seeds (3,000 through the C API) from a first seed drawn from
#                       the clock (MQTT5C_SIM_FIRST, MQTT5C_SIM_SEEDS override it);
#                       10,000 idle clients in one process (tests/scale.rs)
#   make bench          side-by-side benchmark with libmosquitto and Paho C (benches/run.sh)
#   make clean
#
# Variables: PROFILE (cargo profile of build/install/examples, default release),
# TEST_PROFILE (of test, test-c, soak; default dev), CARGO, CC, CFLAGS, CXX, CXXFLAGS, BUILD_DIR,
# CARGO_BUILD_TARGET (a target triple, to cross-compile: README.md "Cross-compiling"),
# NATIVE_STATIC_LIBS (what libmqtt5c.a needs), TEST_STAGES (the stages `make test`
# runs, in order).

PROFILE      ?= release
TEST_PROFILE ?= dev
CARGO        ?= cargo
CC           ?= cc
BUILD_DIR    ?= build
CFLAGS       ?= -std=c11 -Wall -Wextra -Werror -O2 -g
CXXFLAGS     ?= -std=c++17 -Wall -Wextra -Werror -O2 -g

PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CMAKEDIR   ?= $(LIBDIR)/cmake/mqtt5c
INSTALL    ?= install

# What libmqtt5c.a needs besides itself on *-linux-gnu, as printed by
# `cargo rustc --lib --crate-type staticlib -- --print native-static-libs`
# (not run on every build: it recompiles the crate). Goes to mqtt5c.pc's
# Libs.private and to mqtt5c::mqtt5c_static; tests/install.rs links with it.
NATIVE_STATIC_LIBS ?= -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc

# The one version: Cargo.toml's (build.rs writes the header's macros from it).
VERSION := $(shell sed -n 's/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n 1)
VERSION_PARTS := $(subst ., ,$(firstword $(subst -, ,$(subst +, ,$(VERSION)))))
MAJOR := $(word 1,$(VERSION_PARTS))
MINOR := $(word 2,$(VERSION_PARTS))

# cargo puts profile "dev" (and "test") in target/debug, others in target/<name>.
profile_dir  = $(if $(filter dev test,$(1)),debug,$(if $(filter bench,$(1)),release,$(1)))
profile_flag = $(if $(filter dev,$(1)),,--profile $(1))
TARGET_DIR   := $(abspath $(or $(CARGO_TARGET_DIR),target))
LIB_DIR      := $(TARGET_DIR)/$(if $(CARGO_BUILD_TARGET),$(CARGO_BUILD_TARGET)/)$(call profile_dir,$(PROFILE))
PROFILE_FLAG := $(call profile_flag,$(PROFILE)) $(if $(CARGO_BUILD_TARGET),--target $(CARGO_BUILD_TARGET))
TEST_PROFILE_FLAG := $(call profile_flag,$(TEST_PROFILE))
SHLIB        := $(LIB_DIR)/libmqtt5c.so.$(VERSION)

EXAMPLES := $(patsubst examples-c/%.c,$(BUILD_DIR)/%,$(wildcard examples-c/*.c))

.PHONY: all build shlib install uninstall examples demo test deps test-c asan fuzz header-check fmt-check clippy bindings minimal firmware clean bench soak

all: build

build:
	$(CARGO) build $(PROFILE_FLAG)
	@test -f $(LIB_DIR)/libmqtt5c.so && test -f $(LIB_DIR)/libmqtt5c.a && test -f include/mqtt5c.h || \
		{ echo "build: expected $(LIB_DIR)/libmqtt5c.{so,a} and include/mqtt5c.h" >&2; exit 1; }

# cargo's cdylib carries rustc's own version script (all symbols unversioned,
# no soname), and a second script cannot override it (see build.rs). So the
# installed shared library is linked here from the static one: only mqtt_*
# exported, each at version node MQTT5C_0.1 (mqtt5c.map), soname
# libmqtt5c.so.MAJOR. Relinked only when libmqtt5c.a or the map changed.
shlib: build
	@if [ ! -f $(SHLIB) ] || [ $(LIB_DIR)/libmqtt5c.a -nt $(SHLIB) ] || [ mqtt5c.map -nt $(SHLIB) ]; then \
		echo "$(CC) -shared -> $(SHLIB)"; \
		$(CC) -shared -o $(SHLIB).tmp -Wl,-soname,libmqtt5c.so.$(MAJOR) \
			-Wl,--version-script=mqtt5c.map -Wl,--gc-sections -Wl,--as-needed \
			-Wl,-z,relro,-z,now -Wl,-z,noexecstack \
			-Wl,--whole-archive $(LIB_DIR)/libmqtt5c.a -Wl,--no-whole-archive \
			$(NATIVE_STATIC_LIBS) && mv -f $(SHLIB).tmp $(SHLIB); \
	fi

# Paths written into mqtt5c.pc (relative to ${prefix} where they can be) and
# into the CMake package (relative to its own directory): never DESTDIR.
PC_LIBDIR     = $(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))
PC_INCLUDEDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))
CMAKE_TO_LIBDIR     = $(shell realpath -ms --relative-to=$(CMAKEDIR) $(LIBDIR))
CMAKE_TO_INCLUDEDIR = $(shell realpath -ms --relative-to=$(CMAKEDIR) $(INCLUDEDIR))
CMAKE_STATIC_LIBS   = $(subst $(eval) ,;,$(strip $(patsubst -l%,%,$(NATIVE_STATIC_LIBS))))
SIZEOF_VOID_P       = $(shell echo __SIZEOF_POINTER__ | $(CC) -E -P - | tail -n 1)
SUBST = sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@MAJOR@|$(MAJOR)|g' -e 's|@MINOR@|$(MINOR)|g' \
	-e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(PC_LIBDIR)|g' -e 's|@INCLUDEDIR@|$(PC_INCLUDEDIR)|g' \
	-e 's|@NATIVE_STATIC_LIBS@|$(NATIVE_STATIC_LIBS)|g' -e 's|@CMAKE_STATIC_LIBS@|$(CMAKE_STATIC_LIBS)|g' \
	-e 's|@CMAKE_TO_LIBDIR@|$(CMAKE_TO_LIBDIR)|g' -e 's|@CMAKE_TO_INCLUDEDIR@|$(CMAKE_TO_INCLUDEDIR)|g' \
	-e 's|@SIZEOF_VOID_P@|$(SIZEOF_VOID_P)|g'
PKG_FILES := mqtt5c.pc mqtt5cConfig.cmake mqtt5cConfigVersion.cmake

# install(1) replaces each file (a new inode: running programs keep the old
# one) and ln -sf each link, so a second run changes nothing.
install: shlib
	@test -n "$(VERSION)" && test -n "$(MAJOR)" || { echo "install: no version in Cargo.toml" >&2; exit 1; }
	@mkdir -p $(BUILD_DIR)/pkg
	@set -e; for f in $(PKG_FILES); do $(SUBST) packaging/$$f.in > $(BUILD_DIR)/pkg/$$f; done
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(CMAKEDIR)
	$(INSTALL) -m 755 $(SHLIB) $(DESTDIR)$(LIBDIR)/libmqtt5c.so.$(VERSION)
	ln -sf libmqtt5c.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libmqtt5c.so.$(MAJOR)
	ln -sf libmqtt5c.so.$(MAJOR) $(DESTDIR)$(LIBDIR)/libmqtt5c.so
	$(INSTALL) -m 644 $(LIB_DIR)/libmqtt5c.a $(DESTDIR)$(LIBDIR)/libmqtt5c.a
	$(INSTALL) -m 644 include/mqtt5c.h $(DESTDIR)$(INCLUDEDIR)/mqtt5c.h
	$(INSTALL) -m 644 include/mqtt5c.hpp $(DESTDIR)$(INCLUDEDIR)/mqtt5c.hpp
	$(INSTALL) -m 644 $(BUILD_DIR)/pkg/mqtt5c.pc $(DESTDIR)$(PKGCONFIGDIR)/mqtt5c.pc
	$(INSTALL) -m 644 $(BUILD_DIR)/pkg/mqtt5cConfig.cmake $(BUILD_DIR)/pkg/mqtt5cConfigVersion.cmake $(DESTDIR)$(CMAKEDIR)/

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libmqtt5c.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libmqtt5c.so.$(MAJOR) \
		$(DESTDIR)$(LIBDIR)/libmqtt5c.so $(DESTDIR)$(LIBDIR)/libmqtt5c.a \
		$(DESTDIR)$(INCLUDEDIR)/mqtt5c.h $(DESTDIR)$(INCLUDEDIR)/mqtt5c.hpp $(DESTDIR)$(PKGCONFIGDIR)/mqtt5c.pc \
		$(DESTDIR)$(CMAKEDIR)/mqtt5cConfig.cmake $(DESTDIR)$(CMAKEDIR)/mqtt5cConfigVersion.cmake
	-rmdir $(DESTDIR)$(CMAKEDIR) 2>/dev/null

examples: build
	@mkdir -p $(BUILD_DIR)
	@set -e; for src in examples-c/*.c; do \
		exe=$(BUILD_DIR)/$$(basename $$src .c); \
		echo "$(CC) $$src -> $$exe"; \
		$(CC) $(CFLAGS) -pthread -Iinclude $$src -o $$exe \
			-L$(LIB_DIR) -lmqtt5c -Wl,-rpath,$(LIB_DIR) \
			$$(sed -n 's/^ \* link: //p' $$src); \
	done
	@set -e; for src in examples-cpp/*.cpp; do \
		exe=$(BUILD_DIR)/$$(basename $$src .cpp); \
		echo "$(CXX) $$src -> $$exe"; \
		$(CXX) $(CXXFLAGS) -pthread -Iinclude $$src -o $$exe \
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
	MQTT5C_VALGRIND=1 $(CARGO) test --no-fail-fast $(TEST_PROFILE_FLAG)

# The C tests once more, built with clang and ASan+UBSan (valgrind and ASan
# cannot share a process). Only the C programs are instrumented; the Rust
# library is the ordinary build, whose allocations ASan's malloc still
# checks for leaks and misuse from C. Four programs at a time: most of a C
# test's time is spent waiting on its broker, not on the CPU.
asan: build
	MQTT5C_SANITIZE=1 $(CARGO) test $(TEST_PROFILE_FLAG) --test c_api -- --test-threads=4

# Each fuzz target for FUZZ_SECONDS on nightly. New inputs go to the
# untracked fuzz/corpus/<target>; the committed seeds (fuzz/seeds/<v5|v311>,
# fuzz/seeds/client/<v5|v311> for the client targets) are read only;
# crashes land in fuzz/artifacts/<target>/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := decode_v5 decode_v311 roundtrip_v5 roundtrip_v311 client_v5 client_v311
fuzz:
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	@set -e; cd fuzz; for t in $(FUZZ_TARGETS); do \
		mkdir -p corpus/$$t; \
		case $$t in client_*) seeds=seeds/client/$${t##*_};; *) seeds=seeds/$${t##*_};; esac; \
		echo "==== make fuzz: $$t for $(FUZZ_SECONDS)s"; \
		cargo +nightly fuzz run $$t corpus/$$t $$seeds -- \
			-max_total_time=$(FUZZ_SECONDS) -timeout=10; \
	done

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

# The bindings (bindings/*/run-tests.sh: Python with ctypes, Go with cgo,
# C# with Mono) against the build of this make (the dev one in `make test`).
bindings: build
	MQTT5C_LIB_DIR=$(LIB_DIR) scripts/test-bindings.sh

# The library without TLS and WebSocket (cargo --no-default-features, the
# firmware build): the unit tests, a TCP round trip (test_basic) and the
# refusal of mqtts:// and ws:// (test_features), under valgrind like
# test-c; clippy for that feature set. Last in TEST_STAGES: it rebuilds the
# crate (not its dependencies) for the other feature set, once.
MINIMAL_FLAGS := $(TEST_PROFILE_FLAG) --no-default-features
minimal:
	$(CARGO) test $(MINIMAL_FLAGS) --lib
	$(CARGO) test $(MINIMAL_FLAGS) --test proxies
	MQTT5C_VALGRIND=1 $(CARGO) test $(MINIMAL_FLAGS) --test c_api -- \
		--exact test_basic test_features
	$(CARGO) clippy $(MINIMAL_FLAGS) --lib -- -D warnings

# The firmware build (scripts/firmware.sh; docs/performance.md, "Firmware
# build"): FIRMWARE_OPT_LEVEL (z), FIRMWARE_RELR (1), FIRMWARE_TESTS (all),
# FIRMWARE_MAX_BYTES (1048576), FIRMWARE_TOOLCHAIN (nightly).
firmware:
	scripts/firmware.sh

TEST_STAGES := deps build test-c asan fmt-check clippy header-check examples demo bindings minimal

# Runs each stage in its own make, so that a failure stops that stage only:
# one failing test must not hide a clippy error or a broken demo. The stages
# build with TEST_PROFILE: the tests need the dev build anyway, and a second,
# release, build would double CI's compile time.
test:
	@passed=""; failed=""; \
	for stage in $(TEST_STAGES); do \
		echo "==== make test: $$stage"; \
		if $(MAKE) --no-print-directory PROFILE=$(TEST_PROFILE) $$stage; then \
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
	MQTT5C_SOAK=1 $(CARGO) test $(TEST_PROFILE_FLAG) --test reliability -- --nocapture
	MQTT5C_SOAK=1 $(CARGO) test $(TEST_PROFILE_FLAG) --test c_api -- --exact test_churn --nocapture
	MQTT5C_SOAK=1 $(CARGO) test $(TEST_PROFILE_FLAG) --test fault_simulation -- --nocapture
	MQTT5C_SOAK=1 $(CARGO) test $(TEST_PROFILE_FLAG) --test scale -- --nocapture

clean:
	$(CARGO) clean
	rm -rf $(BUILD_DIR)
