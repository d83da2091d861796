# net_failover in Rust: build, test and bench entry points. See README.md.
#
#   make demo     build everything, then one narrated unplug/replug/migrate pass
#   make check    build everything, `make lint` (rustfmt, clippy, checkpatch on our own code),
#                 then the test suite (KUnit in the guest + QEMU scenarios)
#   make bench    packet loss on unplug, replug and live migration, per driver (table + JSON)
#   make build    host setup, kernels and initramfs for every flavour
#   make paths    where the staged kernels and modules are
#   make patches  the project as a patch series for `git am` onto Linux 7.3
#   make clean    remove build output (keeps downloads and ccache); distclean removes the cache

SHELL := /bin/bash
NFR_CACHE ?= /var/cache/net-failover-rust
export NFR_CACHE
# Kernels to build; DRIVERS are the ones every scenario and the bench run against (the
# built-in variant has its own test, tests/test_builtin.py).
FLAVOURS ?= c rust rust-builtin
DRIVERS ?= c rust
PY := $(NFR_CACHE)/venv/bin/python
PYTEST_ARGS ?=
BENCH_RUNS ?= 5
BENCH_OUT ?= $(NFR_CACHE)/out/bench.json
export BENCH_OUT

.PHONY: all build setup kernels paths check lint bench demo patches clean distclean

all: build

setup:
	@scripts/setup-host.sh

kernels: setup
	@for f in $(FLAVOURS); do scripts/build-kernel.sh $$f && scripts/mkinitramfs.sh $$f || exit 1; done

build: kernels

paths:
	@scripts/paths.sh $(FLAVOURS)

check: build
	@scripts/lint.sh rust
	cd tests && NFR_DRIVERS=$(subst $(eval) ,$(comma),$(DRIVERS)) \
		$(PY) -m pytest -v -rxXs $(PYTEST_ARGS)

lint:
	@scripts/lint.sh rust

bench: build
	cd tests && NFR_DRIVERS=$(subst $(eval) ,$(comma),$(DRIVERS)) \
		$(PY) run_bench.py --runs $(BENCH_RUNS) --out $(BENCH_OUT)

demo: build
	cd tests && $(PY) demo.py --driver $(lastword $(DRIVERS))

patches:
	@scripts/export-patches.sh

clean:
	rm -rf $(NFR_CACHE)/build $(NFR_CACHE)/stage $(NFR_CACHE)/out $(NFR_CACHE)/src/tree

distclean:
	rm -rf $(NFR_CACHE)

comma := ,
