#!/bin/bash
# Fetch Debian's linux-source-7.3 from trixie-backports through a private apt source list, so
# no host package is upgraded, and extract it to $NFR_PRISTINE. Any 7.3.x point release works;
# the version used is recorded in $NFR_PRISTINE/.nfr-version.
set -euo pipefail
. "$(dirname "$0")/env.sh"

if [ -f "$NFR_PRISTINE/.nfr-version" ] && [ -f "$NFR_PRISTINE/Makefile" ]; then
	exit 0
fi

APT=$NFR_CACHE/apt
mkdir -p "$APT/lists/partial" "$APT/archives/partial" "$NFR_CACHE/src"
cat >"$APT/sources.list" <<EOT
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
EOT
APTOPTS=(-o "Dir::Etc::sourcelist=$APT/sources.list" -o Dir::Etc::sourceparts=-
	-o "Dir::State::Lists=$APT/lists" -o "Dir::Cache::archives=$APT/archives"
	-o APT::Get::List-Cleanup=0)

nfr_log "fetching $NFR_SRC_PKG from trixie-backports"
apt-get "${APTOPTS[@]}" update -qq || nfr_die "apt-get update of trixie-backports failed"
VER=$(apt-cache "${APTOPTS[@]}" policy "$NFR_SRC_PKG" | awk '/Candidate:/ {print $2}')
[ -n "$VER" ] && [ "$VER" != "(none)" ] || nfr_die "package '$NFR_SRC_PKG' not found in trixie-backports"
(cd "$APT" && apt-get "${APTOPTS[@]}" download "$NFR_SRC_PKG=$VER") ||
	nfr_die "cannot download package '$NFR_SRC_PKG' $VER"
DEB=$(ls "$APT"/"${NFR_SRC_PKG}"_*.deb | tail -1)

rm -rf "$NFR_CACHE/src/deb" "$NFR_PRISTINE.tmp"
mkdir -p "$NFR_CACHE/src/deb" "$NFR_PRISTINE.tmp"
dpkg-deb -x "$DEB" "$NFR_CACHE/src/deb"
TARBALL=$(ls "$NFR_CACHE"/src/deb/usr/src/linux-source-7.3*.tar.xz | head -1)
[ -f "$TARBALL" ] || nfr_die "no source tarball in $DEB"
tar -xJf "$TARBALL" -C "$NFR_PRISTINE.tmp" --strip-components=1
rm -rf "$NFR_CACHE/src/deb"
echo "$NFR_SRC_PKG $VER" >"$NFR_PRISTINE.tmp/.nfr-version"
rm -rf "$NFR_PRISTINE"
mv "$NFR_PRISTINE.tmp" "$NFR_PRISTINE"
nfr_log "kernel source: $(cat "$NFR_PRISTINE/.nfr-version") (make $(make -s -C "$NFR_PRISTINE" kernelversion))"
