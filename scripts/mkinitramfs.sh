#!/bin/bash
# Build the bench guest's initramfs for one flavour:
#   $NFR_STAGE/<flavour>/initramfs.cpio.gz
# It holds busybox-static, the real iproute2 ip and bridge, iputils ping, iperf3, ethtool, dash (with
# the shared libraries they need), the flavour's modules, and the virtio-serial control agent.
set -euo pipefail
. "$(dirname "$0")/env.sh"

FLAVOUR=${1:?usage: mkinitramfs.sh <flavour>}
STAGE=$NFR_STAGE/$FLAVOUR
[ -f "$STAGE/release" ] || nfr_die "flavour $FLAVOUR is not built (run scripts/build-kernel.sh $FLAVOUR)"
REL=$(cat "$STAGE/release")
R=$(mktemp -d)
trap 'rm -rf "$R"' EXIT

mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,proc,sys,dev,tmp,run,etc,root}
cp /bin/busybox "$R/bin/busybox"
for app in $(/bin/busybox --list); do
	[ -e "$R/bin/$app" ] || ln -s busybox "$R/bin/$app"
done
# Real tools replace busybox applets of the same name; `ip` must keep its name.
for tool in /usr/bin/ip /usr/sbin/bridge /usr/bin/ping /usr/bin/iperf3 /usr/sbin/ethtool /bin/dash; do
	[ -x "$tool" ] || tool=$(command -v "$(basename "$tool")") || nfr_die "missing host tool $(basename "$tool")"
	rm -f "$R/bin/$(basename "$tool")"
	cp "$tool" "$R/bin/"
	for lib in $(ldd "$tool" | grep -o '/[^ ]*'); do
		mkdir -p "$R$(dirname "$lib")"
		cp -L "$lib" "$R$lib"
	done
done
mkdir -p "$R/lib/modules"
cp -a "$STAGE/lib/modules/$REL" "$R/lib/modules/"
# The kernel's request_module() runs /sbin/modprobe (e.g. for `ip link add ... type vlan`).
ln -s ../bin/busybox "$R/sbin/modprobe"
install -m 0755 "$NFR_ROOT/scripts/guest/init" "$R/init"
install -m 0755 "$NFR_ROOT/scripts/guest/nfr-agent" "$R/sbin/nfr-agent"
install -m 0755 "$NFR_ROOT/scripts/guest/nfr-topo" "$R/sbin/nfr-topo"
echo "root:x:0:0:root:/root:/bin/sh" >"$R/etc/passwd"
echo "root:x:0:" >"$R/etc/group"
printf '127.0.0.1 localhost\n' >"$R/etc/hosts"

(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -1) >"$STAGE/initramfs.cpio.gz.tmp"
mv "$STAGE/initramfs.cpio.gz.tmp" "$STAGE/initramfs.cpio.gz"
nfr_log "[$FLAVOUR] initramfs: $STAGE/initramfs.cpio.gz ($(du -h "$STAGE/initramfs.cpio.gz" | cut -f1))"
