#!/bin/bash
# Make $NFR_TREE = pristine linux-source-7.3 + the project's overlay + patches/*.patch.
#
# Files are copied only when their content changed, so an unchanged overlay leaves mtimes
# alone and the next kernel build rebuilds nothing.
set -euo pipefail
. "$(dirname "$0")/env.sh"

[ -f "$NFR_PRISTINE/.nfr-version" ] || "$NFR_ROOT/scripts/fetch-source.sh"

# Overlay: these top-level directories of the project mirror the kernel tree.
OVERLAY_DIRS=(drivers rust samples include net Documentation)

if [ ! -f "$NFR_TREE/.nfr-version" ] || ! cmp -s "$NFR_TREE/.nfr-version" "$NFR_PRISTINE/.nfr-version"; then
	nfr_log "creating work tree $NFR_TREE from $(cat "$NFR_PRISTINE/.nfr-version")"
	rm -rf "$NFR_TREE" "$NFR_TREE.tmp"
	cp -a "$NFR_PRISTINE" "$NFR_TREE.tmp"
	rm -f "$NFR_TREE.tmp/.nfr-manifest"
	mv "$NFR_TREE.tmp" "$NFR_TREE"
fi

STAGING=$NFR_CACHE/src/staging
rm -rf "$STAGING"
mkdir -p "$STAGING"

# NFR_SERIES_PREFIX=k (scripts/export-patches.sh): the tree as the first k patches of the
# series leave it, each patches/NNNN-*.patch with the overlay files its NNNN-*.files lists.
shopt -s nullglob
PATCHES=("$NFR_ROOT"/patches/*.patch)
if [ -n "${NFR_SERIES_PREFIX:-}" ]; then
	PATCHES=("${PATCHES[@]:0:$NFR_SERIES_PREFIX}")
fi

# 1. Overlay files.
overlay_files() {
	if [ -n "${NFR_SERIES_PREFIX:-}" ]; then
		for p in "${PATCHES[@]}"; do cat "${p%.patch}.files"; done
	else
		for d in "${OVERLAY_DIRS[@]}"; do
			[ -d "$NFR_ROOT/$d" ] || continue
			(cd "$NFR_ROOT" && find "$d" -type f ! -name '.*')
		done
	fi
}
overlay_files | while IFS= read -r f; do
	mkdir -p "$STAGING/$(dirname "$f")"
	cp "$NFR_ROOT/$f" "$STAGING/$f"
done

# 2. Patches, applied in order on pristine copies of the files they touch (or on the overlay
#    copy, for a patch that edits an overlay file).
for p in "${PATCHES[@]}"; do
	nfr_apply_patch "$STAGING" "$p"
done

# 3. Files we placed before but no longer do go back to pristine (or away).
NEW_MANIFEST=$(cd "$STAGING" && find . -type f | sed 's@^\./@@' | sort)
if [ -f "$NFR_TREE/.nfr-manifest" ]; then
	comm -23 "$NFR_TREE/.nfr-manifest" <(echo "$NEW_MANIFEST") | while read -r f; do
		[ -n "$f" ] || continue
		if [ -e "$NFR_PRISTINE/$f" ]; then cp -p "$NFR_PRISTINE/$f" "$NFR_TREE/$f"; else rm -f "$NFR_TREE/$f"; fi
	done
fi

# 4. Copy what changed.
rsync -rc "$STAGING/" "$NFR_TREE/"
echo "$NEW_MANIFEST" >"$NFR_TREE/.nfr-manifest"
