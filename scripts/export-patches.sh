#!/bin/bash
# `make patches`: the project as a patch series that `git am` applies onto pristine Linux 7.3.
#
# Each patches/NNNN-*.patch (changes to upstream files) becomes one patch of the series, together
# with the new files that belong to it: rust/ with 0001, samples/ with 0002, drivers/ with 0003;
# the documentation is a patch of its own. Output: $NFR_CACHE/out/patches/, checked by applying
# the series to a copy of the pristine files it touches.
set -euo pipefail
. "$(dirname "$0")/env.sh"

[ -f "$NFR_PRISTINE/.nfr-version" ] || "$NFR_ROOT/scripts/fetch-source.sh"
OUT=${NFR_PATCHES_OUT:-$NFR_CACHE/out/patches}
rm -rf "$OUT"
mkdir -p "$OUT"

# new_file <path>: a git-style diff creating <path> from the overlay.
new_file() {
	local f=$1 n
	n=$(wc -l <"$NFR_ROOT/$f")
	printf 'diff --git a/%s b/%s\nnew file mode 100644\n--- /dev/null\n+++ b/%s\n@@ -0,0 +1,%d @@\n' \
		"$f" "$f" "$f" "$n"
	sed 's/^/+/' "$NFR_ROOT/$f"
}

# emit <n> <upstream patch or -> <subject> <body> <new files...>
emit() {
	local n=$1 up=$2 subject=$3 body=$4
	shift 4
	local out="$OUT/$(printf '%04d' "$n")-$(echo "$subject" | tr -c 'A-Za-z0-9\n' - | tr -s - | sed 's/-$//').patch"
	{
		printf 'From: net_failover_rust <netdev@vger.kernel.org>\nSubject: [PATCH %d/4] %s\n\n' "$n" "$subject"
		if [ "$up" != - ]; then
			sed -n '/^Subject:/,/^---$/p' "$up" | sed '1,2d;$d'
		else
			printf '%s\n' "$body"
		fi
		printf -- '---\n'
		[ "$up" = - ] || sed '1,/^---$/d' "$up"
		for f in "$@"; do new_file "$f"; done
		printf -- '-- \n7.3\n'
	} >"$out"
	echo "$out"
}

cd "$NFR_ROOT"
mapfile -t RUST < <(find rust -type f | sort)
mapfile -t SAMPLES < <(find samples -type f | sort)
mapfile -t DRIVERS < <(find drivers -type f | sort)
mapfile -t DOCS < <(find Documentation -type f | sort)
P=(patches/*.patch)
[ ${#P[@]} = 3 ] || nfr_die "expected 3 patches in patches/, found ${#P[@]}"

emit 1 "${P[0]}" "$(sed -n 's/^Subject: \[PATCH\] //p' "${P[0]}")" "" "${RUST[@]}" >/dev/null
emit 2 "${P[1]}" "$(sed -n 's/^Subject: \[PATCH\] //p' "${P[1]}")" "" "${SAMPLES[@]}" >/dev/null
emit 3 "${P[2]}" "$(sed -n 's/^Subject: \[PATCH\] //p' "${P[2]}")" "" "${DRIVERS[@]}" >/dev/null
emit 4 - "Documentation: networking: add the Rust net_failover guide" \
	"The admin and design guide of the Rust net_failover driver, and of the
Rust networking abstractions it is built on." "${DOCS[@]}" >/dev/null

# Check: the series applies, in order, to the pristine files it touches.
CHECK=$(mktemp -d)
trap 'rm -rf "$CHECK"' EXIT
for p in "$OUT"/*.patch; do
	nfr_apply_patch "$CHECK" "$p"
done
for f in "${RUST[@]}" "${SAMPLES[@]}" "${DRIVERS[@]}" "${DOCS[@]}"; do
	cmp -s "$CHECK/$f" "$NFR_ROOT/$f" || nfr_die "$f differs after applying the series"
done
nfr_log "patch series for git am onto Linux 7.3: $OUT"
ls "$OUT"
