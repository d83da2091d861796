#!/bin/bash
# The Debian guest of tests/test_distro.py, for one flavour:
#   $NFR_CACHE/debian/<hash>/rootfs.tar    Debian bookworm, made by mmdebstrap from the host's
#                                           apt sources, with scripts/guest/debian/ copied in;
#                                           shared by every flavour, remade when this script,
#                                           those files or the sources change
#   $NFR_STAGE/<flavour>/debian.img         that root with the flavour's modules, as a raw ext4
#                                           image (sparse); each guest boots an overlay of it
#   scripts/mkdebian.sh <flavour>
set -euo pipefail
. "$(dirname "$0")/env.sh"

FLAVOUR=${1:?usage: mkdebian.sh <flavour>}
STAGE=$NFR_STAGE/$FLAVOUR
command -v mmdebstrap >/dev/null || nfr_die "mmdebstrap is missing (run scripts/setup-host.sh)"

SUITE=bookworm
# The host's own apt sources (bookworm, its updates and security): mmdebstrap reads a .sources
# or .list file given as its mirror.
SOURCES=
for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
	[ -s "$f" ] && { SOURCES=$f; break; }
done
[ -n "$SOURCES" ] || nfr_die "no apt sources on the host (/etc/apt/sources.list.d/debian.sources)"
# What a cloud image of Debian runs, and what the tests drive it with: the four network stacks
# under test (NetworkManager, systemd-networkd, which is in systemd, ifupdown with ISC dhclient,
# and cloud-init, which renders for the others), sshd, the QEMU guest agent, and the tools.
PKGS=(
	systemd systemd-sysv udev dbus kmod procps netbase
	network-manager ifupdown isc-dhcp-client cloud-init
	openssh-server qemu-guest-agent
	iproute2 iputils-ping iperf3 ethtool net-tools e2fsprogs
)
FILES=$NFR_ROOT/scripts/guest/debian

# The root is remade when what goes into it changes: the suite, the packages, the sources,
# mmdebstrap's options, or the files.
MMDEBSTRAP=(mmdebstrap --variant=apt --format=tar --include="$(IFS=,; echo "${PKGS[*]}")"
	--customize-hook="cp -a '$FILES'/. \"\$1\"/"
	--customize-hook='chroot "$1" /usr/local/sbin/nfr-setup')
HASH=$( (cat "$SOURCES"; echo "$SUITE ${MMDEBSTRAP[*]//$FILES/FILES}"; cd "$FILES" && find . -type f |
	LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -c1-16)
ROOT_DIR=$NFR_CACHE/debian/$HASH
TAR=$ROOT_DIR/rootfs.tar
if [ ! -f "$TAR" ]; then
	nfr_log "debian: mmdebstrap $SUITE (${#PKGS[@]} packages) -> $TAR"
	mkdir -p "$ROOT_DIR"
	start=$(date +%s)
	# The files go in once the packages are installed; nfr-setup then enables and masks
	# units inside the new root.
	step() { grep '^I: ' "$ROOT_DIR/mmdebstrap.log" | tail -n1 | cut -c4-; }
	nfr_progress "debian: mmdebstrap" "$ROOT_DIR/mmdebstrap.log" step \
		"${MMDEBSTRAP[@]}" "$SUITE" "$TAR.tmp" "$SOURCES" ||
		{ tail -30 "$ROOT_DIR/mmdebstrap.log" >&2; nfr_die "mmdebstrap failed"; }
	mv "$TAR.tmp" "$TAR"
	nfr_log "debian: root made in $(( $(date +%s) - start )) s"
	# Older roots are not needed any more.
	for d in "$NFR_CACHE"/debian/*/; do
		[ "$d" = "$ROOT_DIR/" ] || rm -rf "$d"
	done
fi

[ -f "$STAGE/release" ] || nfr_die "flavour $FLAVOUR is not built (run scripts/build-kernel.sh $FLAVOUR)"
REL=$(cat "$STAGE/release")
IMG=$STAGE/debian.img
STAMP="$HASH $REL $(stat -c %Y "$STAGE/release") $(sha256sum <"$NFR_ROOT/scripts/guest/nfr-topo" | cut -c1-16)"
if [ -f "$IMG" ] && [ "$(cat "$IMG.stamp" 2>/dev/null)" = "$STAMP" ]; then
	exit 0
fi
R=$(mktemp -d)
trap 'rm -rf "$R"' EXIT
tar -C "$R" -xf "$TAR"
mkdir -p "$R/lib/modules"
cp -a "$STAGE/lib/modules/$REL" "$R/lib/modules/"
depmod -b "$R" "$REL"
# The harness reads the failover group's topology with the same script as in the initramfs.
install -m 0755 "$NFR_ROOT/scripts/guest/nfr-topo" "$R/usr/local/sbin/nfr-topo"
rm -f "$IMG.tmp"
mkfs.ext4 -q -F -L nfr-root -d "$R" "$IMG.tmp" 2G >/dev/null
mv "$IMG.tmp" "$IMG"
echo "$STAMP" >"$IMG.stamp"
nfr_log "[$FLAVOUR] debian root disk: $IMG"
