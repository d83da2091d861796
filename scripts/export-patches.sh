#!/bin/bash
# `make patches`: the project as a patch series that `git am` applies onto pristine Linux 7.3.
#
# Each patches/NNNN-*.patch holds one patch's message and its changes to upstream files; its
# NNNN-*.files lists the new files (from the project's overlay) that belong to it. Every
# overlay file belongs to exactly one patch. The series is, in order: one patch per
# abstraction, the driver, the sample, the guide; then a MAINTAINERS patch made here, and a
# cover letter (patches/cover-letter.txt, with the table of this machine's last `make bench`,
# or else the table of record, patches/bench.txt) in front. Author and Signed-off-by are the
# git identity (user.name, user.email) of whoever runs this.
#
# Checks: the series applies in order to pristine copies of the files it touches and gives the
# project's files; checkpatch --strict on every patch; and every prefix of the series builds:
# the Rust kernel is built after each patch, in a build directory seeded from the `rust`
# flavour's (NFR_PREFIX_BUILDS=0 skips this, which takes about a minute and a half a patch).
# Output: $NFR_CACHE/out/patches/.
set -euo pipefail
. "$(dirname "$0")/env.sh"

[ -f "$NFR_PRISTINE/.nfr-version" ] || "$NFR_ROOT/scripts/fetch-source.sh"
OUT=${NFR_PATCHES_OUT:-$NFR_CACHE/out/patches}
BENCH_TXT=${BENCH_OUT:-$NFR_CACHE/out/bench.json}
BENCH_TXT=${BENCH_TXT%.json}.txt
rm -rf "$OUT"
mkdir -p "$OUT"
cd "$NFR_ROOT"

NAME=$(git config user.name || true)
EMAIL=$(git config user.email || true)
[ -n "$NAME" ] && [ -n "$EMAIL" ] ||
	nfr_die "no git identity: set git config user.name and user.email (the series' author)"
AUTHOR="$NAME <$EMAIL>"

P=(patches/*.patch)
N=$((${#P[@]} + 1))

# Every overlay file in exactly one patch.
overlay=$({ find drivers rust samples include net Documentation -type f ! -name '.*' 2>/dev/null || true; } | sort)
claimed=$(cat patches/*.files | sort)
dups=$(uniq -d <<<"$claimed")
[ -z "$dups" ] || nfr_die "in more than one patches/*.files: $dups"
diff <(echo "$overlay") <(echo "$claimed") >/dev/null ||
	nfr_die "overlay files and patches/*.files differ: $(diff <(echo "$overlay") <(echo "$claimed") | grep '^[<>]' | tr '\n' ' ')"

# new_file <path>: a git-style diff creating <path> from the overlay.
new_file() {
	local f=$1 n
	n=$(wc -l <"$f")
	printf 'diff --git a/%s b/%s\nnew file mode 100644\n--- /dev/null\n+++ b/%s\n@@ -0,0 +1,%d @@\n' \
		"$f" "$f" "$f" "$n"
	sed 's/^/+/' "$f"
}

slug() { echo "$1" | tr -c 'A-Za-z0-9\n' - | tr -s - | sed 's/-$//'; }

# emit <n> <subject> <message file> <diff file>
emit() {
	local n=$1 subject=$2 msg=$3 diff=$4 out
	out="$OUT/$(printf '%04d' "$n")-$(slug "$subject").patch"
	{
		printf 'From: %s\nSubject: [PATCH %d/%d] %s\n\n' "$AUTHOR" "$n" "$N" "$subject"
		cat "$msg"
		printf '\nSigned-off-by: %s\n---\n' "$AUTHOR"
		cat "$diff"
		printf -- '-- \n7.3\n'
	} >"$out"
}

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
for i in "${!P[@]}"; do
	p=${P[$i]}
	subject=$(sed -n 's/^Subject: \[PATCH\] //p' "$p")
	sed -n '/^Subject:/,/^---$/p' "$p" | sed '1,2d;$d' | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' >"$W/msg"
	{
		sed '1,/^---$/d' "$p"
		while IFS= read -r f; do new_file "$f"; done <"${p%.patch}.files"
	} >"$W/diff"
	emit $((i + 1)) "$subject" "$W/msg" "$W/diff"
done

# MAINTAINERS: the abstractions, and the driver beside the C one.
M=$W/maintainers
mkdir -p "$M/a" "$M/b"
cp "$NFR_PRISTINE/MAINTAINERS" "$M/a/MAINTAINERS"
{
	echo "NETWORK DEVICE API [RUST]"
	echo "M:	$AUTHOR"
	echo "L:	netdev@vger.kernel.org"
	echo "L:	rust-for-linux@vger.kernel.org"
	echo "S:	Maintained"
	for f in $(cat patches/*.files | grep -E '^rust/' | grep -v '^rust/kernel/pci/' | sort); do
		case $f in rust/kernel/net/dev/* | rust/kernel/net/netdev/*) echo "F:	${f%/*}/" ;; *) echo "F:	$f" ;; esac
	done | uniq
	echo "F:	samples/rust/rust_netdev_pair.rs"
	echo
} >"$M/api"
{
	echo "NET_FAILOVER MODULE [RUST]"
	echo "M:	$AUTHOR"
	echo "L:	netdev@vger.kernel.org"
	echo "L:	rust-for-linux@vger.kernel.org"
	echo "S:	Maintained"
	echo "F:	Documentation/networking/net_failover_rust.rst"
	echo "F:	drivers/net/net_failover_rust.rs"
	echo "F:	drivers/net/net_failover_trace.c"
	echo "F:	include/trace/events/net_failover.h"
	echo
} >"$M/failover"
# Each entry goes before the first section title that sorts after it.
awk -v api="$M/api" -v fo="$M/failover" '
	function put(file,   l) { while ((getline l <file) > 0) print l; close(file) }
	BEGIN { inbody = 0 }
	/^[A-Z0-9].*[^:]$/ && prev == "" && inbody {
		if (!a && $0 > "NETWORK DEVICE API [RUST]") { put(api); a = 1 }
		if (!f && $0 > "NET_FAILOVER MODULE [RUST]") { put(fo); f = 1 }
	}
	/^3C59X NETWORK DRIVER/ { inbody = 1 }
	{ print; prev = $0 }
' "$M/a/MAINTAINERS" >"$M/b/MAINTAINERS"
grep -q '^NET_FAILOVER MODULE \[RUST\]$' "$M/b/MAINTAINERS" &&
	grep -q '^NETWORK DEVICE API \[RUST\]$' "$M/b/MAINTAINERS" || nfr_die "MAINTAINERS: entries not placed"
(cd "$M" && diff -u a/MAINTAINERS b/MAINTAINERS | sed '1s/\t.*//;2s/\t.*//') >"$W/diff" || true
printf '%s\n' "Add the Rust network device abstractions and the Rust net_failover" \
	"driver, with the lists of both the networking and the Rust for Linux" \
	"reviewers." >"$W/msg"
emit "$N" "MAINTAINERS: add the Rust network device API and Rust net_failover" "$W/msg" "$W/diff"

# The cover letter.
{
	printf 'From: %s\nSubject: [PATCH 0/%d] %s\n\n' "$AUTHOR" "$N" "$(head -1 patches/cover-letter.txt)"
	sed '1,2d' patches/cover-letter.txt | while IFS= read -r line; do
		if [ "$line" = "@BENCH@" ]; then
			if [ -f "$BENCH_TXT" ]; then
				echo "$ make bench   # $(date -r "$BENCH_TXT" -u +%Y-%m-%d)"
				cat "$BENCH_TXT"
			else
				nfr_log "no $BENCH_TXT: the cover letter has the table of record, patches/bench.txt" >&2
				cat patches/bench.txt
			fi
		else
			printf '%s\n' "$line"
		fi
	done
	echo
	for p in "$OUT"/0*.patch; do
		[ "$(basename "$p")" = 0000-cover-letter.patch ] && continue
		printf '  %s (+%d)\n' "$(sed -n 's/^Subject: \[PATCH [0-9]*\/[0-9]*\] //p' "$p")" \
			"$(sed '1,/^---$/d' "$p" | grep -c '^+[^+]' || true)"
	done
	printf -- '\n-- \n7.3\n'
} >"$OUT/0000-cover-letter.patch.tmp"
mv "$OUT/0000-cover-letter.patch.tmp" "$OUT/0000-cover-letter.patch"

# Check: the series applies, in order, to the pristine files it touches, and gives the
# project's files.
CHECK=$W/check
mkdir -p "$CHECK"
for p in "$OUT"/0*.patch; do
	[ "$(basename "$p")" = 0000-cover-letter.patch ] && continue
	nfr_apply_patch "$CHECK" "$p"
done
for f in $overlay; do
	cmp -s "$CHECK/$f" "$f" || nfr_die "$f differs after applying the series"
done

# checkpatch --strict, on every patch. New files come before the MAINTAINERS patch that lists
# them, at the end of the series: its "does MAINTAINERS need updating?" is answered there.
for p in "$OUT"/0*.patch; do
	[ "$(basename "$p")" = 0000-cover-letter.patch ] && continue
	perl "$NFR_PRISTINE/scripts/checkpatch.pl" --strict --no-tree --ignore FILE_PATH_CHANGES -q \
		"$p" >"$W/cp" 2>&1 ||
		{ cat "$W/cp" >&2; nfr_die "checkpatch --strict: $(basename "$p")"; }
done
nfr_log "series: $N patches and a cover letter, each checkpatch --strict clean"

# Every prefix builds.
if [ "${NFR_PREFIX_BUILDS:-1}" != 0 ]; then
	[ -f "$NFR_BUILD/rust/vmlinux" ] || nfr_die "build the rust flavour first (make kernels)"
	SO=$NFR_BUILD/series
	rm -rf "$SO"
	cp -a "$NFR_BUILD/rust" "$SO"
	restore() {
		"$NFR_ROOT/scripts/prepare-tree.sh"
		rm -rf "$SO"
	}
	trap 'restore; rm -rf "$W"' EXIT
	# The flavour's configuration, before each prefix drops the symbols it does not have yet
	# (NET_FAILOVER_RUST, SAMPLE_RUST_NETDEV_PAIR): the whole series must give it back.
	cp "$SO/.config" "$W/config"
	warned=
	for k in $(seq 1 ${#P[@]}); do
		NFR_SERIES_PREFIX=$k "$NFR_ROOT/scripts/prepare-tree.sh"
		cp "$W/config" "$SO/.config"
		start=$(date +%s)
		if ! { nfr_kmake "$SO" olddefconfig && nfr_kmake "$SO" bzImage modules; } >"$SO/prefix-$k.log" 2>&1; then
			tail -30 "$SO/prefix-$k.log" >&2
			nfr_die "the series does not build after patch $k ($(basename "${P[$((k - 1))]}"))"
		fi
		warn=$(grep -c '^warning' "$SO/prefix-$k.log" || true)
		nfr_log "prefix $k/${#P[@]} builds ($(( $(date +%s) - start )) s, $warn warnings): $(basename "${P[$((k - 1))]}")"
		[ "$warn" = 0 ] || { grep -A6 '^warning' "$SO/prefix-$k.log" | head -30 >&2; warned+=" $k"; }
	done
	[ -z "$warned" ] || nfr_die "warnings after patch(es)$warned"
	cmp -s "$W/config" "$SO/.config" ||
		nfr_die "the whole series does not give the rust flavour's configuration back"
fi

nfr_log "patch series for git am onto Linux 7.3: $OUT"
ls "$OUT"
