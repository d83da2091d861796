# net_failover in Rust: build, test and bench entry points. See README.md, and tests/README.md
# for the test harness (guest kernels, bench, scenarios, event storm).
#
#   make demo     build everything, then one narrated unplug/replug/migrate pass
#   make check    build the kernels, `make lint` (rustfmt, clippy, compile_fail doctests,
#                 checkpatch), then the test suite (KUnit in the guest + QEMU scenarios) on the
#                 production kernels, and its debug subset on the debug kernels (KASAN, lockdep,
#                 kmemleak, ...); every test is checked by the kernel-log scanner
#   make check-debug  the whole suite on the debug kernels
#   make check-distro every Debian guest scenario (tests/test_distro.py) on the production kernels;
#                 `make check` runs its subset (NetworkManager and networkd)
#   make debian   the Debian guest's root disk for each production flavour (scripts/mkdebian.sh)
#   make storm    a seeded storm of overlapping events under traffic, on the debug kernels
#                 (SEED=, EVENTS=, DRIVERS=, REPLAY=, STORM_OUT=; tests/run_storm.py)
#   make bench    packet loss on unplug, replug and live migration, per driver (table + JSON),
#                 on the production kernels
#   make build    host setup, kernels and initramfs for every flavour
#   make paths    where the staged kernels and modules are
#   make patches  the project as a patch series for `git am` onto Linux 7.3
#   make clean    remove build output (keeps downloads and ccache); distclean removes the cache

SHELL := /bin/bash
NFR_CACHE ?= /var/cache/net-failover-rust
export NFR_CACHE
# Kernels: DRIVERS are the production flavours every scenario runs against (and `make bench`
# compares), DEBUG_DRIVERS the debug ones (scripts/config/debug.config: KASAN, lockdep,
# PROVE_RCU, kmemleak, ...) that run the debug subset in `make check` (tests marked `debug`)
# and everything in `make check-debug`, BUILTIN the built-in Rust driver's
# (tests/test_builtin.py).
DRIVERS ?= c rust
DEBUG_DRIVERS ?= c-debug rust-debug
BUILTIN ?= rust-builtin-debug
FLAVOURS ?= $(DRIVERS) $(DEBUG_DRIVERS) $(BUILTIN)
PY := $(NFR_CACHE)/venv/bin/python
PYTEST_ARGS ?=
BENCH_RUNS ?= 5
BENCH_OUT ?= $(NFR_CACHE)/out/bench.json
export BENCH_OUT
# make storm: SEED=0 draws a seed and prints it; DRIVERS names drivers (c, rust), each run on
# its debug flavour; STORM_FLAVOURS names exact flavours instead; REPLAY=i stops after event i.
SEED ?= 0
EVENTS ?= 500
REPLAY ?=
STORM_OUT ?= $(NFR_CACHE)/out/storm.json
STORM_FLAVOURS ?=
storm_flavours = $(if $(STORM_FLAVOURS),$(STORM_FLAVOURS),$(foreach d,$(DRIVERS),$(if $(findstring -,$(d)),$(d),$(d)-debug)))

.PHONY: all build setup kernels kernels-bench kernels-storm debian paths check check-debug \
	check-distro lint bench storm demo patches clean distclean

all: build

setup:
	@scripts/setup-host.sh

build_flavours = @for f in $(1); do scripts/build-kernel.sh $$f && scripts/mkinitramfs.sh $$f || exit 1; done

kernels: setup
	$(call build_flavours,$(FLAVOURS))

kernels-bench: setup
	$(call build_flavours,$(DRIVERS))

kernels-storm: setup
	$(call build_flavours,$(storm_flavours))

debian: kernels-bench
	@for f in $(DRIVERS); do scripts/mkdebian.sh $$f || exit 1; done

build: kernels debian

paths:
	@scripts/paths.sh $(FLAVOURS)

list = $(subst $(eval) ,$(comma),$(1))

check: kernels debian
	@scripts/lint.sh $(lastword $(DRIVERS))
	cd tests && NFR_DRIVERS=$(call list,$(DRIVERS)) NFR_BUILTIN=$(BUILTIN) \
		$(PY) -m pytest -v -rsxXfE -m "not storm and not distro" $(PYTEST_ARGS)
	cd tests && NFR_DRIVERS=$(call list,$(DRIVERS)) \
		$(PY) -m pytest -v -rsxXfE -m "distro_subset" test_distro.py $(PYTEST_ARGS)
	cd tests && NFR_DRIVERS=$(call list,$(DEBUG_DRIVERS)) \
		$(PY) -m pytest -v -rsxXfE -m "debug or storm" $(PYTEST_ARGS)

check-debug: kernels
	cd tests && NFR_DRIVERS=$(call list,$(DEBUG_DRIVERS)) NFR_BUILTIN=$(BUILTIN) \
		$(PY) -m pytest -v -rsxXfE -m "not distro" $(PYTEST_ARGS)

check-distro: debian
	cd tests && NFR_DRIVERS=$(call list,$(DRIVERS)) \
		$(PY) -m pytest -v -rsxXfE -m "distro" test_distro.py $(PYTEST_ARGS)

lint:
	@scripts/lint.sh $(lastword $(DRIVERS))

bench: kernels-bench
	cd tests && NFR_DRIVERS=$(call list,$(DRIVERS)) \
		$(PY) run_bench.py --runs $(BENCH_RUNS) --out $(BENCH_OUT)

storm: kernels-storm
	cd tests && $(PY) run_storm.py --seed "$(SEED)" --events $(EVENTS) \
		--flavours "$(storm_flavours)" --out $(STORM_OUT) $(if $(REPLAY),--replay $(REPLAY))

demo: kernels-bench
	cd tests && $(PY) demo.py --driver $(lastword $(DRIVERS))

patches:
	@scripts/export-patches.sh

clean:
	rm -rf $(NFR_CACHE)/build $(NFR_CACHE)/stage $(NFR_CACHE)/out $(NFR_CACHE)/src/tree

distclean:
	rm -rf $(NFR_CACHE)

comma := ,
