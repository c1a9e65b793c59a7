# Bramble: one statically linked multi-call binary, `bramble`, per target.
#
#   make [ARCH=x86_64|arm64|armhf|armv6]   build build/$(ARCH)/bramble (default: this machine)
#   make deps ARCH=...                     fetch, verify and build the libraries for a target
#   make test                              unit tests here and under qemu, then integration
#   make check                             unit tests with AddressSanitizer + UBSan
#   make sizes | bench | fuzz | fuzz-replay | format | format-check | clean | help

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
TARGETS := x86_64 arm64 armhf armv6
HOST_ARCH := $(patsubst aarch64,arm64,$(patsubst armv7l,armhf,$(patsubst armv6l,armv6,$(shell uname -m))))
ARCH ?= $(HOST_ARCH)
ifeq ($(filter $(ARCH),$(TARGETS)),)
$(error unknown ARCH '$(ARCH)': choose one of $(TARGETS))
endif

CROSS_x86_64 := x86_64-linux-gnu-
CROSS_arm64 := aarch64-linux-gnu-
CROSS_armhf := arm-linux-gnueabihf-
CROSS_armv6 := arm-linux-gnueabi-
ARCH_CFLAGS_armv6 := -march=armv6 -marm -mfpu=vfp -mfloat-abi=softfp
CC := $(CROSS_$(ARCH))gcc
ifeq ($(ARCH)-$(HOST_ARCH),x86_64-x86_64)
ifeq ($(shell command -v $(CC)),)
CC := gcc
endif
endif

VERSION := $(shell cat VERSION)
SANITIZE ?=
# BUILD names the output tree (several builds of one checkout may run side by side);
# EXCLUDE leaves sources out (a module under construction).
BUILD ?= build
EXCLUDE ?=
ifeq ($(SANITIZE),1)
B := $(BUILD)/$(ARCH)-sanitize
OPT := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LINK_MODE := -fsanitize=address,undefined
else
B := $(BUILD)/$(ARCH)
OPT := -Os -ffunction-sections -fdata-sections
LINK_MODE := -static -Wl,--gc-sections
endif
DEPS_MK := build/$(ARCH)/deps.mk

WARNINGS := -Wall -Wextra -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter -Wno-format-truncation -Werror
CFLAGS := -std=gnu11 $(OPT) $(WARNINGS) $(ARCH_CFLAGS_$(ARCH)) -I. -MMD -MP \
	-DBRAMBLE_VERSION='"$(VERSION)"' -DBRAMBLE_TARGET='"$(ARCH)"' -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64
LDFLAGS := $(LINK_MODE) -Wl,-z,noexecstack -Wl,-z,relro -Wl,-z,now
# glibc warns that NSS functions in a static binary need its shared plugins at run time.
# Bramble never calls them (libcgroup's rules parser and libcoap's resolver reference them);
# only those two lines are dropped, every other linker message is shown.
LINK_QUIET := 2>&1 | { grep -v -e 'in statically linked applications requires' -e ': in function ' >&2 || true; }

# Everything but the multi-call entry point is shared by the binary and the unit tests.
LIB_SRCS := $(filter-out $(EXCLUDE),$(wildcard platform/*.c core/*.c drivers/*/*.c drivers/*.c agent/*.c) \
	$(filter-out tools/main.c,$(wildcard tools/*.c)))
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/obj/%.o)
UNIT_SRCS := $(filter-out $(EXCLUDE),$(wildcard tests/unit/*.c))
UNIT_OBJS := $(UNIT_SRCS:%.c=$(B)/obj/%.o)

NO_DEPS_GOALS := clean help format format-check setup
ifeq ($(filter $(NO_DEPS_GOALS),$(MAKECMDGOALS)),)
ifneq ($(MAKECMDGOALS),deps)
-include $(DEPS_MK)
endif
endif

.PHONY: all deps unit-tests fuzz-replay clang-check test check sizes bench fuzz format format-check clean help setup toolchain
all: $(B)/bramble

toolchain:
	@command -v $(CC) >/dev/null 2>&1 || { echo "bramble: the $(ARCH) compiler $(CC) is not installed; run tools/setup.sh as root to install it" >&2; exit 1; }

deps: toolchain
	tools/deps/deps.sh build $(ARCH) $(DEPS_MK)

$(DEPS_MK): tools/deps/deps.lock tools/deps/deps.sh | toolchain
	tools/deps/deps.sh build $(ARCH) $@

$(B)/obj/%.o: %.c $(DEPS_MK) | toolchain
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) $(DEPS_CFLAGS) -c $< -o $@

$(B)/bramble: $(LIB_OBJS) $(B)/obj/tools/main.o
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(DEPS_LDFLAGS) $(DEPS_LIBS) -lm $(LINK_QUIET)
ifneq ($(SANITIZE),1)
	@cp $@ $@.debug # with its symbols, for perf and gdb
	@$(CROSS_$(ARCH))strip --strip-all $@ 2>/dev/null || strip --strip-all $@
endif

$(B)/unit-tests: $(LIB_OBJS) $(UNIT_OBJS)
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(DEPS_LDFLAGS) $(DEPS_LIBS) -lm $(LINK_QUIET)

unit-tests: $(B)/unit-tests $(B)/bramble

# Benchmark programs: tests/bench/bench_<name>.c -> $(B)/bench-<name>
$(B)/bench-%: $(B)/obj/tests/bench/bench_%.o $(LIB_OBJS)
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(DEPS_LDFLAGS) $(DEPS_LIBS) -lm $(LINK_QUIET)

test:
	tests/run.sh

check:
	$(MAKE) SANITIZE=1 ARCH=$(HOST_ARCH) unit-tests
	tests/unit/run-unit.sh $(HOST_ARCH) $(BUILD)/$(HOST_ARCH)-sanitize/unit-tests

sizes:
	@for t in $(TARGETS); do $(MAKE) --no-print-directory -s ARCH=$$t >/dev/null || exit 1; done
	@tests/bench/sizes.sh $(TARGETS)

bench:
	tests/bench/run.sh

# Fuzz targets tests/fuzz/fuzz_<name>.c, each with a seed corpus in tests/fuzz/corpus/<name>/.
# fuzz-replay builds (gcc, any tree) run a corpus once; `make fuzz` runs libFuzzer (clang).
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 60

$(B)/fuzz-replay-%: $(B)/obj/tests/fuzz/fuzz_%.o $(B)/obj/tests/fuzz/replay.o $(LIB_OBJS)
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(DEPS_LDFLAGS) $(DEPS_LIBS) -lm $(LINK_QUIET)

fuzz-replay: $(FUZZ_TARGETS:%=$(B)/fuzz-replay-%)

fuzz: $(DEPS_MK)
	@command -v clang >/dev/null || { echo "bramble: make fuzz needs clang and libclang-rt-14-dev: run tools/setup.sh fuzz as root" >&2; exit 1; }
	@mkdir -p $(BUILD)/fuzz
	@for t in $(FUZZ_TARGETS); do \
		echo "  FUZZ    $$t ($(FUZZ_SECONDS)s)"; \
		clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -I. -D_GNU_SOURCE \
			-DBRAMBLE_VERSION='"$(VERSION)"' -DBRAMBLE_TARGET='"$(ARCH)"' $(DEPS_CFLAGS) \
			-o $(BUILD)/fuzz/fuzz-$$t tests/fuzz/fuzz_$$t.c $(LIB_SRCS) $(DEPS_LDFLAGS) $(DEPS_LIBS) -lm || exit 1; \
		mkdir -p $(BUILD)/fuzz/corpus-$$t && cp -n tests/fuzz/corpus/$$t/* $(BUILD)/fuzz/corpus-$$t/; \
		$(BUILD)/fuzz/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(BUILD)/fuzz/corpus-$$t \
			2>&1 | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|Done' ; \
	done

clang-check: $(DEPS_MK)
	@clang -std=gnu11 -fsyntax-only -Wall -Wextra -Wno-unused-parameter -Werror -I. -D_GNU_SOURCE \
		-DBRAMBLE_VERSION='"$(VERSION)"' -DBRAMBLE_TARGET='"$(ARCH)"' $(DEPS_CFLAGS) \
		$(LIB_SRCS) tools/main.c $(UNIT_SRCS) $(wildcard tests/fuzz/*.c tests/bench/*.c)

format:
	clang-format -i $(LIB_SRCS) tools/main.c $(UNIT_SRCS) $(wildcard */*.h tests/unit/*.h tests/fuzz/*.c tests/bench/*.c)

format-check:
	clang-format --dry-run --Werror $(LIB_SRCS) tools/main.c $(UNIT_SRCS) $(wildcard */*.h tests/unit/*.h tests/fuzz/*.c tests/bench/*.c)

setup:
	tools/setup.sh

clean:
	rm -rf build

help:
	@sed -n '1,9p' Makefile

-include $(LIB_OBJS:.o=.d) $(UNIT_OBJS:.o=.d) $(B)/obj/tools/main.d $(wildcard $(B)/obj/tests/*/*.d)
