# Paved — the two commands are `make up` and `make check` (see README.md).
BUILD       ?= build
CHECK_BUILD ?= build-check
FUZZ_SECONDS ?= 600

.PHONY: all build up check unit e2e browser fuzz fuzz-smoke bench deps clean

all: build

deps:
	@scripts/install-deps --build-only

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized

build: deps $(BUILD)/build.ninja
	@ninja -C $(BUILD)

# Install what is missing, build, run the platform with its embedded defaults and a demo org.
up:
	@scripts/install-deps --build-only
	@$(MAKE) --no-print-directory build
	./$(BUILD)/pave up

# Install what is missing, build with -Werror and ASan+UBSan, run every test suite.
check:
	@scripts/install-deps
	@scripts/check

fuzz:
	@scripts/install-deps --build-only
	@scripts/fuzz $(FUZZ_SECONDS)

fuzz-smoke:
	@scripts/fuzz 15

bench: build
	@for b in bench/catalog bench/pipeline bench/registry bench/deploy bench/pipeline-logs bench/detect bench/cost; do $$b || exit 1; done

clean:
	rm -rf $(BUILD) $(CHECK_BUILD) build-fuzz
