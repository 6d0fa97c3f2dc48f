#!/bin/bash
# Build the OCI test images, cached by the hash of this directory's scripts (so a second test
# run, or a second checkout on the same machine, reuses them). Prints the OCI layout path.
# Tags in the layout:
#   busybox    one layer from Debian's busybox-static (the offline image's tar), CMD sh
#   layers     busybox + two hand-made layers (whiteouts, an opaque dir, file<->dir, hardlinks
#              across layers, xattrs, setuid, fifo, long and UTF-8 names: mklayers.py)
#   user       busybox with USER 1000:1000, ENTRYPOINT, CMD, WORKDIR, ENV
#   volume     busybox with VOLUME /data and /data/seed in the image (an anonymous volume each run)
#   arm64      busybox's layer with an arm64 config (only to be part of `multiarch`)
#   multiarch  an OCI image index: linux/amd64 (busybox) + linux/arm64
#   debian     a debootstrap --variant=minbase bookworm root (about 2 min the first time)
# Usage: tests/images/build.sh [CACHE_DIR]    (needs build/images/busybox/busybox.tar)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cache=${1:-${COVE_TEST_CACHE:-/var/cache/cove/test-images}}
key=$(cat "$here/build.sh" "$here/mklayers.py" "$top/build/images/busybox/busybox.tar" | sha256sum | cut -c1-16)
out="$cache/$key"
if [ -f "$out/done" ]; then echo "$out/oci"; exit 0; fi
# one builder at a time (test files run in parallel); the others wait and reuse its result
mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9
if [ -f "$out/done" ]; then echo "$out/oci"; exit 0; fi

for tool in umoci skopeo debootstrap; do
	command -v $tool >/dev/null || { echo "tests/images/build.sh: $tool missing: run scripts/setup.sh" >&2; exit 1; }
done
mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
oci="$work/oci"
umoci init --layout "$oci"

new_image() { # TAG [umoci config args...]
	local tag=$1; shift
	umoci new --image "$oci:$tag"
	umoci config --image "$oci:$tag" --os linux "$@"
}

new_image busybox --architecture amd64 --config.cmd sh
umoci raw add-layer --image "$oci:busybox" "$top/build/images/busybox/busybox.tar"

python3 "$here/mklayers.py" "$work"
new_image layers --architecture amd64 --config.cmd sh
umoci raw add-layer --image "$oci:layers" "$top/build/images/busybox/busybox.tar"
umoci raw add-layer --image "$oci:layers" "$work/layers-1.tar"
umoci raw add-layer --image "$oci:layers" "$work/layers-2.tar"

new_image user --architecture amd64 --config.user 1000:1000 \
	--config.entrypoint /bin/echo --config.entrypoint entry \
	--config.cmd default-arg --config.workingdir /home/app --config.env APP=1
umoci raw add-layer --image "$oci:user" "$top/build/images/busybox/busybox.tar"

mkdir -p "$work/vol/data" && echo seeded >"$work/vol/data/seed"
tar --numeric-owner --owner=0 --group=0 -C "$work/vol" -cf "$work/volume.tar" data
new_image volume --architecture amd64 --config.cmd sh --config.volume /data
umoci raw add-layer --image "$oci:volume" "$top/build/images/busybox/busybox.tar"
umoci raw add-layer --image "$oci:volume" "$work/volume.tar"

new_image arm64 --architecture arm64 --config.cmd sh
umoci raw add-layer --image "$oci:arm64" "$top/build/images/busybox/busybox.tar"

# debootstrap minbase, cached on its own (it is the slow part)
deb="$cache/debian-minbase-bookworm.tar"
if [ ! -f "$deb" ]; then
	root="$work/debian-root"
	mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
	debootstrap --variant=minbase bookworm "$root" "${mirror:-http://deb.debian.org/debian}" >"$work/debootstrap.log" 2>&1 ||
		{ tail -20 "$work/debootstrap.log" >&2; exit 1; }
	rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
	tar --numeric-owner --xattrs -C "$root" -cf "$deb.tmp" .
	mv "$deb.tmp" "$deb"
	rm -rf "$root"
fi
new_image debian --architecture amd64 --config.cmd bash
umoci raw add-layer --image "$oci:debian" "$deb"

# the multi-arch index: an image index blob naming the amd64 and arm64 manifests
python3 - "$oci" <<'PY'
import hashlib, json, os, sys
oci = sys.argv[1]
idx = json.load(open(os.path.join(oci, "index.json")))
by_tag = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in idx["manifests"]}
entries = []
for tag, arch in (("busybox", "amd64"), ("arm64", "arm64")):
    d = dict(by_tag[tag])
    d.pop("annotations", None)
    d["platform"] = {"architecture": arch, "os": "linux"}
    if arch == "arm64":
        d["platform"]["variant"] = "v8"
    entries.append(d)
blob = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                   "manifests": entries}, separators=(",", ":")).encode()
digest = hashlib.sha256(blob).hexdigest()
with open(os.path.join(oci, "blobs", "sha256", digest), "wb") as f:
    f.write(blob)
idx["manifests"].append({"mediaType": "application/vnd.oci.image.index.v1+json",
                         "digest": "sha256:" + digest, "size": len(blob),
                         "annotations": {"org.opencontainers.image.ref.name": "multiarch"}})
json.dump(idx, open(os.path.join(oci, "index.json"), "w"))
PY
umoci gc --layout "$oci"

rm -rf "$out"
mkdir -p "$out"
mv "$oci" "$out/oci"
touch "$out/done"
echo "$out/oci"
