#!/bin/bash
# Print where each built flavour is staged, for any QEMU setup to boot.
set -euo pipefail
. "$(dirname "$0")/env.sh"
for f in "${@:-c}"; do
	s=$NFR_STAGE/$f
	if [ ! -f "$s/release" ]; then echo "$f: not built (make build)"; continue; fi
	echo "$f:"
	echo "  kernel     $s/bzImage"
	echo "  modules    $s/lib/modules/$(cat "$s/release")"
	echo "  initramfs  $s/initramfs.cpio.gz"
	echo "  config     $s/config"
	echo "  build dir  $NFR_BUILD/$f"
done
echo "source: $(cat "$NFR_PRISTINE/.nfr-version" 2>/dev/null || echo 'not fetched') in $NFR_TREE"
