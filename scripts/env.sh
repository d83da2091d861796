# shellcheck shell=bash
# Common paths and settings, sourced by every script in scripts/ and by the Makefile.
#
# Everything that is expensive to build or download lives under NFR_CACHE, outside the clone,
# so that a second clone (CI) on the same machine reuses it.

NFR_ROOT=${NFR_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
NFR_CACHE=${NFR_CACHE:-/var/cache/net-failover-rust}

# Kernel source: the Debian package and the version it held are recorded here.
NFR_SRC_PKG=linux-source-7.3
NFR_PRISTINE=$NFR_CACHE/src/pristine          # extracted linux-source-7.3 tarball
NFR_TREE=$NFR_CACHE/src/tree                  # pristine + overlay + patches
NFR_BUILD=$NFR_CACHE/build                    # O= directories, one per flavour
NFR_STAGE=$NFR_CACHE/stage                    # bzImage + lib/modules per flavour
NFR_OUT=${NFR_OUT:-$NFR_CACHE/out}            # bench output, logs
NFR_VENV=$NFR_CACHE/venv

# Pinned versions of what does not come from Debian.
NFR_BINDGEN_VERSION=0.73.2
NFR_PYTEST_VERSION=9.2.0
NFR_QMP_VERSION=0.0.6
NFR_MATPLOTLIB_VERSION=3.9.2

# The kernel's Rust build must use Debian's rustc-web (it ships rust-src), not rustup's.
export PATH=/usr/bin:/usr/sbin:/bin:/sbin:$NFR_CACHE/cargo/bin:$PATH
export LIBCLANG_PATH=/usr/lib/llvm-19/lib
export CCACHE_DIR=${CCACHE_DIR:-$NFR_CACHE/ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
# Same absolute tree path for every clone, so ccache hits across clones.
export CCACHE_NOHASHDIR=1

# The config fragments of flavour $1, in merge order: base, the driver's own, and debug.config
# for a debug flavour (<flavour>-debug).
nfr_fragments() {
	local d=$NFR_ROOT/scripts/config
	case "$1" in
	*-debug) echo "$d/base.config" "$d/${1%-debug}.config" "$d/debug.config" ;;
	*) echo "$d/base.config" "$d/$1.config" ;;
	esac
}

# The C compiler of flavour $1: Debian's clang-19 with lld for the debug flavours (Rust with
# KASAN needs CC_IS_CLANG), gcc for the others.
nfr_toolchain() {
	case "$1" in
	*-debug) echo llvm-19 ;;
	*) echo gcc ;;
	esac
}

# `make` in the work tree for build directory $1 (named after its flavour), with the project's
# toolchain (ccache'd gcc or clang-19, Debian's Rust, the pinned bindgen). Further arguments
# go to make.
nfr_kmake() {
	local o=$1 cc
	shift
	case "$(nfr_toolchain "$(basename "$o")")" in
	llvm-19) cc=(LLVM=-19 CC=/usr/lib/ccache/clang-19 HOSTCC=/usr/lib/ccache/clang-19) ;;
	*) cc=(CC=/usr/lib/ccache/gcc HOSTCC=/usr/lib/ccache/gcc) ;;
	esac
	make -C "$NFR_TREE" O="$o" -s -j"${NFR_JOBS:-$(nproc)}" "${cc[@]}" \
		RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc HOSTRUSTC=/usr/bin/rustc \
		BINDGEN="$NFR_CACHE/cargo/bin/bindgen" RUSTFMT=/usr/bin/rustfmt \
		CLIPPY_DRIVER=/usr/bin/clippy-driver "$@"
}

nfr_log() { printf '\033[1m[nfr]\033[0m %s\n' "$*" >&2; }
nfr_die() { printf '\033[31m[nfr] error:\033[0m %s\n' "$*" >&2; exit 1; }

# Runs "$@" with its output in file $2 and, until it ends, says that it is alive: every 30 s on
# a terminal (60 s otherwise), label $1, the time elapsed and, if $3 names a command, what it
# prints (how far the work is). Returns the command's status.
nfr_progress() {
	local label=$1 log=$2 status=$3 start=$SECONDS every=60 next pid rc=0 t
	shift 3
	[ -t 2 ] && every=30
	next=$every
	"$@" >"$log" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		sleep 1
		t=$((SECONDS - start))
		if [ "$t" -ge "$next" ]; then
			next=$((next + every))
			nfr_log "$label: $((t / 60))m$(printf %02d $((t % 60)))s${status:+, $("$status")}"
		fi
	done
	wait "$pid" || rc=$?
	return "$rc"
}

# Apply patch $2 in directory $1, first copying there the pristine files it touches that $1
# does not hold yet (so a patch applies to the pristine file, or to an earlier patch's result).
nfr_apply_patch() {
	local dir=$1 p=$2 f
	sed -n 's@^+++ b/\([^[:space:]]*\).*@\1@p' "$p" | while read -r f; do
		if [ ! -e "$dir/$f" ] && [ -e "$NFR_PRISTINE/$f" ]; then
			mkdir -p "$dir/$(dirname "$f")"
			cp "$NFR_PRISTINE/$f" "$dir/$f"
		fi
	done
	patch -s -p1 -d "$dir" --no-backup-if-mismatch <"$p" || nfr_die "patch $(basename "$p") does not apply"
}
