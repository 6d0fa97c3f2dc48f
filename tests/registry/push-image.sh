#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Push the test image (tests/registry/mkimage.py: busybox-static + a small file, OCI manifest)
# into a registry started by tests/registry/start.sh, with skopeo.
#
#   tests/registry/push-image.sh DIR NAME:TAG [v2s2] [DIGESTFILE]
#
# v2s2 converts the manifest to Docker schema2 ("-" keeps OCI); DIGESTFILE receives the
# manifest digest. The OCI layout is built once, in $OCI_LAYOUT (default DIR/oci-layout).
set -eu
[ $# -ge 2 ] && [ $# -le 4 ] || { echo "usage: push-image.sh DIR NAME:TAG [v2s2|-] [DIGESTFILE]" >&2; exit 2; }
DIR=$(cd "$1" && pwd)
NAME=$2
FORMAT=${3:--}
DIGESTFILE=${4:-}
HERE=$(cd "$(dirname "$0")" && pwd)
REGISTRY_USER="" REGISTRY_PASSWORD="" REGISTRY_CERTS_DIR=""
. "$DIR/env"

PYTHON=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
LAYOUT=${OCI_LAYOUT:-$DIR/oci-layout}
[ -e "$LAYOUT/index.json" ] || "$PYTHON" "$HERE/mkimage.py" "$LAYOUT" busybox
[ -e "$DIR/policy.json" ] ||
	echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$DIR/policy.json"
set -- --policy "$DIR/policy.json" copy --quiet --retry-times 0
if [ -n "$REGISTRY_CERTS_DIR" ]; then
	set -- "$@" --dest-cert-dir "$REGISTRY_CERTS_DIR/$REGISTRY"
else
	set -- "$@" --dest-tls-verify=false
fi
[ -z "$REGISTRY_USER" ] || set -- "$@" --dest-creds "$REGISTRY_USER:$REGISTRY_PASSWORD"
[ "$FORMAT" = "-" ] || set -- "$@" --format "$FORMAT"
[ -z "$DIGESTFILE" ] || set -- "$@" --digestfile "$DIGESTFILE"
no_proxy='*' NO_PROXY='*' skopeo "$@" "oci:$LAYOUT:busybox" "docker://$REGISTRY/$NAME"
