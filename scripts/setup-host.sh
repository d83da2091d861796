#!/bin/bash
# Install everything the build, the guest image and the bench need, from package registries
# only. Idempotent: when everything is present it only checks, in a few seconds.
set -euo pipefail
. "$(dirname "$0")/env.sh"

[ "$(id -u)" = 0 ] || nfr_die "setup-host.sh installs packages and must run as root"
mkdir -p "$NFR_CACHE" || nfr_die "cannot create $NFR_CACHE"

# Debian packages from the host's own sources (bookworm, bookworm-security).
DEB_PKGS=(
	# kernel build
	build-essential gcc make bc flex bison libelf-dev libssl-dev cpio kmod xz-utils
	dwarves rsync ccache python3-venv python3-pip
	# Rust for the kernel: rustc-web ships rust-src, rustup's toolchain here does not
	rustc-web rust-web-src rustfmt-web rust-web-clippy cargo-web
	libclang-19-dev clang-19
	# the debug flavours are built with LLVM (LLVM=-19): Rust with KASAN needs clang
	lld-19 llvm-19
	# bench host and guest userland
	busybox-static iproute2 iputils-ping iperf3 ethtool nftables
	# the Debian guest (tests/test_distro.py): its root, and the peer's DHCP, RA and ssh
	mmdebstrap e2fsprogs dnsmasq-base openssh-client
)

missing=()
for p in "${DEB_PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	nfr_log "installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || nfr_die "apt-get update failed"
	if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
		for p in "${missing[@]}"; do
			apt-get install -y -qq --no-install-recommends "$p" >/dev/null 2>&1 ||
				nfr_die "cannot install Debian package '$p'"
		done
	fi
fi

# QEMU >= 8 has the igb model; bookworm has 7.2, so take qemu-system-x86 from bookworm-backports
# through a private source list (only QEMU's own packages move; nothing else on the host does).
QEMU_MIN=8
qemu_major() { qemu-system-x86_64 --version 2>/dev/null | sed -n 's/^QEMU emulator version \([0-9]*\).*/\1/p'; }
if [ "$(qemu_major || true)" = "" ] || [ "$(qemu_major)" -lt $QEMU_MIN ]; then
	nfr_log "installing qemu-system-x86 from bookworm-backports"
	APT=$NFR_CACHE/apt-bpo
	mkdir -p "$APT/lists/partial"
	KR=/usr/share/keyrings/debian-archive-keyring.gpg
	cat >"$APT/sources.list" <<EOT
deb [signed-by=$KR] http://deb.debian.org/debian bookworm main
deb [signed-by=$KR] http://deb.debian.org/debian bookworm-updates main
deb [signed-by=$KR] http://deb.debian.org/debian-security bookworm-security main
deb [signed-by=$KR] http://deb.debian.org/debian bookworm-backports main
EOT
	APTOPTS=(-o "Dir::Etc::sourcelist=$APT/sources.list" -o Dir::Etc::sourceparts=-
		-o "Dir::State::Lists=$APT/lists" -o APT::Get::List-Cleanup=0)
	apt-get "${APTOPTS[@]}" update -qq || nfr_die "apt-get update of bookworm-backports failed"
	DEBIAN_FRONTEND=noninteractive apt-get "${APTOPTS[@]}" install -y -qq --no-install-recommends \
		-t bookworm-backports qemu-system-x86 >/dev/null ||
		nfr_die "cannot install Debian package 'qemu-system-x86' from bookworm-backports"
	[ "$(qemu_major)" -ge $QEMU_MIN ] || nfr_die "qemu-system-x86 is $(qemu_major), need >= $QEMU_MIN"
fi

# bindgen-cli from crates.io, pinned, built with Debian's cargo so it does not depend on rustup.
BINDGEN=$NFR_CACHE/cargo/bin/bindgen
if ! { [ -x "$BINDGEN" ] && "$BINDGEN" --version 2>/dev/null | grep -q " $NFR_BINDGEN_VERSION\$"; }; then
	nfr_log "installing bindgen-cli $NFR_BINDGEN_VERSION from crates.io"
	CARGO=$(command -v cargo || true)
	[ -n "$CARGO" ] || nfr_die "no cargo to build bindgen-cli"
	"$CARGO" install --locked --root "$NFR_CACHE/cargo" --version "$NFR_BINDGEN_VERSION" bindgen-cli \
		>"$NFR_CACHE/bindgen-install.log" 2>&1 ||
		nfr_die "cannot install crate 'bindgen-cli' $NFR_BINDGEN_VERSION (see $NFR_CACHE/bindgen-install.log)"
fi

# Python test tools, pinned, in a venv outside the clone.
# matplotlib draws the bench's and the demo's figures.
PYPI=("pytest==$NFR_PYTEST_VERSION" "qemu.qmp==$NFR_QMP_VERSION"
	"matplotlib==$NFR_MATPLOTLIB_VERSION")
if ! "$NFR_VENV/bin/python" -c "import pytest, qemu.qmp, matplotlib, sys; \
sys.exit(0 if (pytest.__version__, matplotlib.__version__) == \
('$NFR_PYTEST_VERSION', '$NFR_MATPLOTLIB_VERSION') else 1)" 2>/dev/null; then
	nfr_log "installing ${PYPI[*]} from PyPI"
	python3 -m venv "$NFR_VENV" || nfr_die "cannot create venv (python3-venv)"
	"$NFR_VENV/bin/pip" install -q "${PYPI[@]}" ||
		nfr_die "cannot install PyPI packages ${PYPI[*]}"
fi

# The kernel source, from trixie-backports through a private apt list.
"$NFR_ROOT/scripts/fetch-source.sh"

nfr_log "host ready"
