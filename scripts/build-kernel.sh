#!/bin/bash
# Build one flavour of the guest kernel and stage it.
#   scripts/build-kernel.sh <flavour>      (flavour: c, rust, rust-builtin, or one of them with
#                                           -debug: its fragment + debug.config, built with LLVM)
# Output: $NFR_STAGE/<flavour>/{bzImage,lib/modules/<release>/}, see `make paths`.
set -euo pipefail
. "$(dirname "$0")/env.sh"

FLAVOUR=${1:?usage: build-kernel.sh <flavour>}
read -r -a FRAGS <<<"$(nfr_fragments "$FLAVOUR")"
for f in "${FRAGS[@]}"; do
	[ -f "$f" ] || nfr_die "unknown flavour '$FLAVOUR' (no $f)"
done
TOOLCHAIN=$(nfr_toolchain "$FLAVOUR")

O=$NFR_BUILD/$FLAVOUR
STAGE=$NFR_STAGE/$FLAVOUR
KMAKE=(nfr_kmake "$O")

"$NFR_ROOT/scripts/prepare-tree.sh"

# A new flavour starts from a copy of a built one with the same compiler: Kbuild then rebuilds
# only what depends on the config symbols that differ. (ccache cannot help there: every object
# includes the config.)
if [ ! -d "$O" ]; then
	for other in "$NFR_BUILD"/*; do
		[ -f "$other/vmlinux" ] && [ -f "$other/.nfr-config-hash" ] || continue
		[ "$(nfr_toolchain "$(basename "$other")")" = "$TOOLCHAIN" ] || continue
		nfr_log "[$FLAVOUR] seeding the build directory from $(basename "$other")"
		rm -rf "$O.tmp"
		cp -a "$other" "$O.tmp"
		rm -f "$O.tmp/.nfr-config-hash" "$O.tmp/build.log"
		mv "$O.tmp" "$O"
		break
	done
fi
mkdir -p "$O"

# Rust must be usable before anything else: say so plainly if it is not.
if ! "${KMAKE[@]}" rustavailable >"$O/rustavailable.log" 2>&1; then
	cat "$O/rustavailable.log" >&2
	nfr_die "'make rustavailable' failed: the Rust toolchain is not usable for the kernel (run scripts/setup-host.sh)"
fi

# Configure from fragments; redo only when a fragment changed.
CFG_HASH=$( (cat "${FRAGS[@]}" "$NFR_TREE/.nfr-version"; echo "$TOOLCHAIN") | sha256sum | cut -d' ' -f1)
if [ ! -f "$O/.config" ] || [ "$(cat "$O/.nfr-config-hash" 2>/dev/null)" != "$CFG_HASH" ]; then
	nfr_log "[$FLAVOUR] configuring ($TOOLCHAIN)"
	"${KMAKE[@]}" tinyconfig >/dev/null
	(cd "$NFR_TREE" && scripts/kconfig/merge_config.sh -m -O "$O" "$O/.config" \
		"${FRAGS[@]}" >"$O/merge_config.log")
	"${KMAKE[@]}" olddefconfig >/dev/null
	# Every symbol a fragment asks for must have stuck (a later fragment overrides an earlier).
	bad=0
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*) grep -qxF "$line" "$O/.config" || { echo "  wanted $line, got: $(grep "^${line%%=*}=" "$O/.config" || echo unset)" >&2; bad=1; } ;;
		"# CONFIG_"*" is not set") sym=${line#\# }; sym=${sym%% *}
			grep -q "^$sym=" "$O/.config" && { echo "  wanted $sym unset" >&2; bad=1; } ;;
		esac
	done < <(cat "${FRAGS[@]}" |
		sed -n 's/^\(# \)\?\(CONFIG_[A-Za-z0-9_]*\)\([= ].*\)$/\2 &/p' |
		awk '{ sym = $1; sub(/^[^ ]* /, ""); last[sym] = $0; order[NR] = sym }
		     END { for (i = 1; i <= NR; i++) if (!(order[i] in done)) { done[order[i]]; print last[order[i]] } }')
	[ $bad = 0 ] || nfr_die "[$FLAVOUR] config fragments did not apply"
	echo "$CFG_HASH" >"$O/.nfr-config-hash"
fi

nfr_log "[$FLAVOUR] building (log: $O/build.log)"
start=$(date +%s)
# How far it is: the objects built so far, out of the tree's count at the end of the last build
# here (or of the flavour this directory was seeded from); none on a first build.
touch "$O/.nfr-build-start"
TOTAL=$(cat "$O/.nfr-objects" 2>/dev/null || true)
built() {
	echo "$(find "$O" -name '*.o' -newer "$O/.nfr-build-start" | wc -l) objects built${TOTAL:+ (the tree has $TOTAL)}"
}
if ! nfr_progress "[$FLAVOUR] building" "$O/build.log" built "${KMAKE[@]}" bzImage modules; then
	tail -40 "$O/build.log" >&2
	nfr_die "[$FLAVOUR] kernel build failed"
fi
find "$O" -name '*.o' | wc -l >"$O/.nfr-objects"
nfr_log "[$FLAVOUR] built in $(( $(date +%s) - start )) s"

# Stage bzImage and modules.
REL=$(cat "$O/include/config/kernel.release")
rm -rf "$STAGE.tmp"
mkdir -p "$STAGE.tmp"
cp "$O/arch/x86/boot/bzImage" "$STAGE.tmp/bzImage"
"${KMAKE[@]}" INSTALL_MOD_PATH="$STAGE.tmp" INSTALL_MOD_STRIP=1 DEPMOD=/sbin/depmod modules_install >/dev/null
rm -f "$STAGE.tmp/lib/modules/$REL/build" "$STAGE.tmp/lib/modules/$REL/source"
cp "$O/.config" "$STAGE.tmp/config"
echo "$REL" >"$STAGE.tmp/release"
rm -rf "$STAGE"
mv "$STAGE.tmp" "$STAGE"
nfr_log "[$FLAVOUR] staged $STAGE/bzImage and $STAGE/lib/modules/$REL"
