# net_failover in Rust: build, test and bench entry points. See README.md.
#
#   make demo     build everything, then one narrated unplug/replug/migrate pass
#   make check    build the debug kernels, `make lint` (rustfmt, clippy, checkpatch on our own
#                 code), then the test suite on them (KUnit in the guest + QEMU scenarios), each
#                 test checked by the kernel-log scanner
#   make bench    packet loss on unplug, replug and live migration, per driver (table + JSON),
#                 on the production kernels
#   make build    host setup, kernels and initramfs for every flavour
#   make paths    where the staged kernels and modules are
#   make patches  the project as a patch series for `git am` onto Linux 7.3
#   make clean    remove build output (keeps downloads and ccache); distclean removes the cache

SHELL := /bin/bash
NFR_CACHE ?= /var/cache/net-failover-rust
export NFR_CACHE
# Kernels: CHECK_DRIVERS are the flavours every scenario runs against in `make check` (debug
# kernels: KASAN, lockdep, PROVE_RCU, kmemleak, ...; scripts/config/debug.config), BUILTIN the
# built-in Rust driver's (tests/test_builtin.py), BENCH_DRIVERS the ones `make bench` compares.
CHECK_DRIVERS ?= c-debug rust-debug
BUILTIN ?= rust-builtin-debug
BENCH_DRIVERS ?= c rust
FLAVOURS ?= $(CHECK_DRIVERS) $(BUILTIN) $(BENCH_DRIVERS)
PY := $(NFR_CACHE)/venv/bin/python
PYTEST_ARGS ?=
BENCH_RUNS ?= 5
BENCH_OUT ?= $(NFR_CACHE)/out/bench.json
export BENCH_OUT

.PHONY: all build setup kernels kernels-check kernels-bench paths check lint bench demo patches \
	clean distclean

all: build

setup:
	@scripts/setup-host.sh

build_flavours = @for f in $(1); do scripts/build-kernel.sh $$f && scripts/mkinitramfs.sh $$f || exit 1; done

kernels: setup
	$(call build_flavours,$(FLAVOURS))

kernels-check: setup
	$(call build_flavours,$(CHECK_DRIVERS) $(BUILTIN))

kernels-bench: setup
	$(call build_flavours,$(BENCH_DRIVERS))

build: kernels

paths:
	@scripts/paths.sh $(FLAVOURS)

check: kernels-check
	@scripts/lint.sh $(lastword $(CHECK_DRIVERS))
	cd tests && NFR_DRIVERS=$(subst $(eval) ,$(comma),$(CHECK_DRIVERS)) NFR_BUILTIN=$(BUILTIN) \
		$(PY) -m pytest -v -rxXs $(PYTEST_ARGS)

lint:
	@scripts/lint.sh $(lastword $(CHECK_DRIVERS))

bench: kernels-bench
	cd tests && NFR_DRIVERS=$(subst $(eval) ,$(comma),$(BENCH_DRIVERS)) \
		$(PY) run_bench.py --runs $(BENCH_RUNS) --out $(BENCH_OUT)

demo: kernels-bench
	cd tests && $(PY) demo.py --driver $(lastword $(BENCH_DRIVERS))

patches:
	@scripts/export-patches.sh

clean:
	rm -rf $(NFR_CACHE)/build $(NFR_CACHE)/stage $(NFR_CACHE)/out $(NFR_CACHE)/src/tree

distclean:
	rm -rf $(NFR_CACHE)

comma := ,
