#!/bin/bash
# Style gates for the project's own kernel code, in the prepared tree of one flavour:
#   - rustfmt (the tree's .rustfmt.toml) on our Rust files, and the kernel's `make rustfmtcheck`;
#   - `make CLIPPY=1`: no clippy warning may point at one of our files;
#   - the compile_fail doctests of the abstractions (scripts/compile-fail.sh);
#   - `make rustdoc`: no warning may point at one of our files;
#   - checkpatch --strict on our C files.
set -euo pipefail
. "$(dirname "$0")/env.sh"

FLAVOUR=${1:-c}
O=$NFR_BUILD/$FLAVOUR
[ -f "$O/.config" ] || nfr_die "flavour $FLAVOUR is not built"
"$NFR_ROOT/scripts/prepare-tree.sh"

cd "$NFR_ROOT"
mapfile -t RS < <(find drivers rust samples net -name '*.rs' 2>/dev/null | sort)
mapfile -t CS < <(find drivers rust samples net include -name '*.[ch]' 2>/dev/null | sort)
fail=0

if [ ${#RS[@]} -gt 0 ]; then
	nfr_log "[lint] rustfmt: ${#RS[@]} files"
	/usr/bin/rustfmt --config-path "$NFR_TREE/.rustfmt.toml" --edition 2021 --check "${RS[@]}" || fail=1
fi
nfr_kmake "$O" rustfmtcheck || fail=1

nfr_log "[lint] clippy (make CLIPPY=1)"
nfr_kmake "$O" CLIPPY=1 \
	bzImage modules >"$O/clippy.log" 2>&1 || { tail -30 "$O/clippy.log"; fail=1; }
ours=$(printf '%s\n' "${RS[@]}" | sed 's@^@src/tree/@' | paste -sd'|')
if [ -n "$ours" ] && grep -A12 '^warning' "$O/clippy.log" | grep -E -- "--> .*($ours)" >/dev/null; then
	grep -B2 -A12 '^warning' "$O/clippy.log" >&2
	nfr_log "[lint] clippy warns on our files"
	fail=1
fi

"$NFR_ROOT/scripts/compile-fail.sh" "$FLAVOUR" || fail=1

# rustdoc: no warning (a broken intra-doc link, a bad code block) may point at our files.
nfr_log "[lint] rustdoc (make rustdoc)"
nfr_kmake "$O" rustdoc >"$O/rustdoc.log" 2>&1 || { tail -30 "$O/rustdoc.log"; fail=1; }
# Ours: our files, and the upstream Rust files that patches/ extend. rustdoc names them
# relative to the tree.
docs=$( (printf '%s\n' "${RS[@]}"; sed -n 's@^+++ b/\(.*\.rs\)$@\1@p' patches/*.patch) |
	sort -u | paste -sd'|')
if grep -A12 '^warning' "$O/rustdoc.log" | grep -E -- "--> (.*/)?($docs):" >/dev/null; then
	grep -B2 -A12 '^warning' "$O/rustdoc.log" >&2
	nfr_log "[lint] rustdoc warns on our files"
	fail=1
fi

for f in "${CS[@]}"; do
	perl "$NFR_TREE/scripts/checkpatch.pl" --strict --no-tree --terse -q -f "$f" || fail=1
done

[ $fail = 0 ] || nfr_die "lint failed"
nfr_log "[lint] clean: rustfmt, clippy, compile_fail doctests, rustdoc, checkpatch --strict"
