#!/bin/bash
# The abstractions' compile_fail doctests: code that must not compile, because a type or token
# makes the misuse a compile error (an Rtnl token without the lock, an SkBuff used after it was
# sent, ...).
#   scripts/compile-fail.sh <flavour>
#
# The kernel's doctests run as KUnit tests in the guest, so they cannot hold code that fails to
# build; like rust/kernel/types/for_lt.rs, such examples are marked ```ignore,compile_fail,EXXXX.
# Each one is built here as an out-of-tree module against the flavour's build, and must fail
# with that error code, and only that one. A control module, the same wrapper with an empty
# body, must build.
set -euo pipefail
. "$(dirname "$0")/env.sh"

FLAVOUR=${1:?usage: compile-fail.sh <flavour>}
O=$NFR_BUILD/$FLAVOUR
[ -f "$O/vmlinux" ] || nfr_die "flavour $FLAVOUR is not built"
W=$O/compile-fail
rm -rf "$W"
mkdir -p "$W"

# Writes module $2 to directory $1, with the doctest body read from stdin.
mkmod() {
	local dir=$1 name=$2
	mkdir -p "$dir"
	echo "obj-m := $name.o" >"$dir/Kbuild"
	{
		cat <<EOT
// SPDX-License-Identifier: GPL-2.0
//! A compile_fail doctest, built to check that it fails.
#![allow(dead_code, unused_imports, unused_variables, unreachable_code)]
use kernel::prelude::*;
module! {
    type: M,
    name: "$name",
    authors: ["net_failover_rust"],
    description: "compile_fail check",
    license: "GPL",
}
struct M;
impl kernel::Module for M {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(M)
    }
}
fn doctest() -> Result {
EOT
		cat
		echo "    Ok(())"
		echo "}"
	} >"$dir/$name.rs"
}

build() {
	nfr_kmake "$O" M="$1" modules >"$1/build.log" 2>&1
}

mkmod "$W/control" nfr_cf_control </dev/null
build "$W/control" || { cat "$W/control/build.log" >&2; nfr_die "[compile-fail] the control module does not build"; }

n=0 fail=0
cd "$NFR_ROOT"
while IFS= read -r f; do
	# One record per block: "<line> <code>" then the body, ended by a line "@@END".
	awk '
		/^[[:space:]]*\/\/\/ ```ignore,compile_fail,E[0-9]+[[:space:]]*$/ {
			code = $0; sub(/.*compile_fail,/, "", code); gsub(/[[:space:]]/, "", code)
			print "@@BLOCK " NR " " code; inblock = 1; next
		}
		inblock && /^[[:space:]]*\/\/\/ ```[[:space:]]*$/ { print "@@END"; inblock = 0; next }
		inblock { line = $0; sub(/^[[:space:]]*\/\/\/ ?/, "", line); sub(/^# /, "", line); print line }
	' "$f" >"$W/blocks"
	while IFS= read -r head; do
		read -r _ line code <<<"$head"
		n=$((n + 1))
		dir=$W/cf$n
		sed -n "/^@@BLOCK $line /,/^@@END\$/p" "$W/blocks" | sed '1d;$d' | mkmod "$dir" "nfr_cf$n"
		if build "$dir"; then
			echo "  $f:$line: builds, but must fail with $code" >&2
			fail=1
		elif ! grep -q "^error\[$code\]" "$dir/build.log"; then
			echo "  $f:$line: fails, but not with $code:" >&2
			grep '^error' "$dir/build.log" | head -5 >&2
			fail=1
		elif grep '^error\[' "$dir/build.log" | grep -vq "^error\[$code\]"; then
			echo "  $f:$line: fails with $code, and with other errors too:" >&2
			grep '^error' "$dir/build.log" | head -5 >&2
			fail=1
		fi
	done < <(grep '^@@BLOCK ' "$W/blocks")
done < <({
	grep -rl --include='*.rs' 'ignore,compile_fail,E' rust samples drivers 2>/dev/null
	# Upstream files that patches/ extend, as the work tree has them.
	sed -n 's@^+++ b/\(.*\.rs\)$@\1@p' patches/*.patch | sort -u | while read -r t; do
		grep -l 'ignore,compile_fail,E' "$NFR_TREE/$t" 2>/dev/null || true
	done
} | sort)

[ $n -gt 0 ] || nfr_die "[compile-fail] no compile_fail doctest found"
[ $fail = 0 ] || nfr_die "[compile-fail] $n checked, some compiled or failed for another reason"
nfr_log "[compile-fail] $n compile_fail doctests fail to build, each with its error code"
