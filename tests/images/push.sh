#!/bin/bash
# Push the test images (tests/images/build.sh) to a registry on 127.0.0.1 as:
#   R/busybox R/layers R/user R/debian   OCI manifests, gzip layers
#   R/multiarch                          OCI index (amd64 + arm64)
#   R/schema2                            Docker schema2 manifest (busybox)
#   R/zstd                               OCI manifest with zstd layers (busybox)
# Usage: tests/images/push.sh OCI_LAYOUT 127.0.0.1:PORT [extra skopeo dest flags...]
set -euo pipefail
oci=$1 reg=$2
shift 2
case "$reg" in 127.*|localhost:*) ;; *) echo "push.sh: only registries on 127.0.0.1" >&2; exit 1 ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
copy() { skopeo copy -q --dest-tls-verify=false "$@"; }
for tag in busybox layers user volume debian; do
	copy "$@" "oci:$oci:$tag" "docker://$reg/$tag:latest"
done
copy "$@" --all "oci:$oci:multiarch" "docker://$reg/multiarch:latest"
copy "$@" --format v2s2 "oci:$oci:busybox" "docker://$reg/schema2:latest"
# recompress into a layout first: pushing directly lets skopeo reuse the gzip blob
skopeo copy -q --dest-compress-format zstd "oci:$oci:busybox" "oci:$tmp/zstd:busybox"
copy "$@" "oci:$tmp/zstd:busybox" "docker://$reg/zstd:latest"
