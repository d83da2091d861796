#!/bin/bash
# Regenerate one of patches/ after editing the files it touches.
#   scripts/mkpatch.sh patches/NNNN-name.patch
# Copies the pristine files the patch touches to a/, applies the patch to b/, opens nothing:
# edit $WORK/b/<file> (printed), then run again with --write to rewrite the patch from a/ and b/,
# keeping its header (everything before the first "--- a/").
set -euo pipefail
. "$(dirname "$0")/env.sh"

P=${1:?usage: mkpatch.sh patches/NNNN-name.patch [--write]}
WORK=${NFR_PATCH_WORK:-$NFR_CACHE/src/patchwork}/$(basename "$P" .patch)
mapfile -t FILES < <(sed -n 's@^+++ b/\([^[:space:]]*\).*@\1@p' "$P")
if [ "${2:-}" != --write ]; then
	rm -rf "$WORK"
	for f in "${FILES[@]}"; do
		mkdir -p "$WORK/a/$(dirname "$f")" "$WORK/b/$(dirname "$f")"
		cp "$NFR_PRISTINE/$f" "$WORK/a/$f"
		cp "$NFR_PRISTINE/$f" "$WORK/b/$f"
	done
	patch -s -p1 -d "$WORK/b" <"$P"
	printf '%s\n' "${FILES[@]/#/$WORK/b/}"
	exit 0
fi
{
	sed '/^--- a\//,$d' "$P"
	for f in "${FILES[@]}"; do
		(cd "$WORK" && diff -u "a/$f" "b/$f" || true) |
			sed -e "1s@^--- .*@--- a/$f@" -e "2s@^+++ .*@+++ b/$f@"
	done
} >"$P.new"
mv "$P.new" "$P"
echo "rewrote $P"
