#!/bin/bash
# A registry that misbehaves: each failure is one clear line, a non-zero exit, and a store that
# `image ls` and the next pull still trust.
. "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
"$top/tests/registry/start.sh" bad "$T/bad" >"$T/log" 2>&1 || { not_ok "bad registry starts" "$(cat "$T/log")"; exit 0; }
"$top/tests/registry/start.sh" plain "$T/reg" >"$T/log" 2>&1 || { not_ok "registry starts" "$(cat "$T/log")"; exit 0; }
trap '"$top/tests/registry/stop.sh" "$T/bad" >/dev/null 2>&1; "$top/tests/registry/stop.sh" "$T/reg" >/dev/null 2>&1; cleanup' EXIT
B=127.0.0.1:$(cat "$T/bad/port")
. "$T/reg/env"
oci=$("$top/tests/images/build.sh")
skopeo copy -q --dest-tls-verify=false "oci:$oci:busybox" "docker://$REGISTRY/busybox:latest"
export COVE_REGISTRY_TIMEOUT=3

fails() { # NAME PATTERN REPO
	local start=$(date +%s)
	"$COVE" pull -q "$B/$3" >/dev/null 2>"$T/err"
	local rc=$? took=$(( $(date +%s) - start ))
	if [ $rc -ne 0 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -qi -- "$2" "$T/err"; then
		ok "$1 (${took}s)"
	else
		not_ok "$1" "rc=$rc" "$(cat "$T/err")"
	fi
	"$COVE" image ls >/dev/null 2>"$T/err" || not_ok "image ls after: $1" "$(cat "$T/err")"
}
fails "a manifest whose digest does not match" "digest" wrongdigest
fails "a registry answering 500" "500" always500
fails "a registry that never answers" "did not answer\|timed out\|timeout" hang
fails "a manifest that never ends" "manifest\|too large\|4 MiB" big
fails "a manifest announcing 100 MiB" "manifest\|too large\|4 MiB" biglen
fails "a truncated blob" "incomplete\|truncated\|dropped" trunc
fails "a blob longer than its descriptor" "larger than the expected" overflow
fails "a registry that wants credentials" "authentication required\|401" auth-good
expect "nothing was named in the store" "" "$("$COVE" image ls -q)"
"$COVE" pull -q "$REGISTRY/busybox" >/dev/null 2>"$T/err" && ok "the next good pull works" || not_ok "the next good pull works" "$(cat "$T/err")"
expect "... and runs" hi "$("$COVE" run --rm "$REGISTRY/busybox" echo hi 2>&1)"

# layers that try to write outside the root filesystem: refused, naming the entry
python3 - "$T" <<'PY'
import io, sys, tarfile
out = sys.argv[1]
def tar(name, entries):
    with tarfile.open(f"{out}/{name}.tar", "w") as t:
        for path, kind, link in entries:
            ti = tarfile.TarInfo(path)
            ti.type, ti.linkname, ti.mode = kind, link, 0o644
            data = b"pwned\n" if kind == tarfile.REGTYPE else b""
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data) if data else None)
tar("dotdot", [("../../etc/pwned", tarfile.REGTYPE, "")])
tar("absolute", [("/etc/pwned", tarfile.REGTYPE, "")])
tar("symlink", [("link", tarfile.SYMTYPE, "/etc"), ("link/pwned", tarfile.REGTYPE, "")])
PY
umoci init --layout "$T/evil" >/dev/null
for kind in dotdot absolute symlink; do
	umoci new --image "$T/evil:$kind" >/dev/null
	umoci raw add-layer --image "$T/evil:$kind" "$T/$kind.tar" >/dev/null 2>&1
	skopeo copy -q --dest-tls-verify=false "oci:$T/evil:$kind" "docker://$REGISTRY/evil:$kind" >/dev/null 2>&1
done
"$COVE" pull -q "$REGISTRY/evil:dotdot" >/dev/null 2>"$T/err"
[ $? -ne 0 ] && grep -q "'../../etc/pwned' escapes the root filesystem" "$T/err" && ok "a layer entry with ../ is refused, named" || not_ok "a layer entry with ../ is refused, named" "$(cat "$T/err")"
"$COVE" pull -q "$REGISTRY/evil:absolute" >/dev/null 2>"$T/err"
[ $? -ne 0 ] && grep -q "'/etc/pwned' escapes the root filesystem" "$T/err" && ok "an absolute layer entry is refused, named" || not_ok "an absolute layer entry is refused, named" "$(cat "$T/err")"
"$COVE" pull -q "$REGISTRY/evil:symlink" >/dev/null 2>"$T/err"
[ $? -ne 0 ] && grep -q "'link/pwned' escapes" "$T/err" && ok "an entry through a symlink is refused, named" || not_ok "an entry through a symlink is refused, named" "$(cat "$T/err")"
expect "no image was named for them" 0 "$("$COVE" images --format json | grep -c evil)"
expect "and no snapshot was left for them" 1 "$(ls "$COVE_ROOT/images/snapshots" | wc -l)"

# variant NAME PYTHON: the busybox test image as NAME, after PYTHON changed its manifest (man)
# or config (cfg) (put(bytes) stores a blob and gives its digest and size), pushed
variant() {
	cp -r "$oci" "$T/$1"
	python3 - "$T/$1" "$1" "$2" <<'PY'
import hashlib, json, os, sys
root, name, change = sys.argv[1:4]
def blob(d): return os.path.join(root, "blobs", "sha256", d.split(":")[1])
def put(data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    open(blob(d), "wb").write(data)
    return d, len(data)
idx = json.load(open(os.path.join(root, "index.json")))
ent = [m for m in idx["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "busybox"][0]
man = json.load(open(blob(ent["digest"])))
cfg = json.load(open(blob(man["config"]["digest"])))
exec(change)
man["config"]["digest"], man["config"]["size"] = put(json.dumps(cfg).encode())
d, n = put(json.dumps(man).encode())
idx["manifests"].append({"mediaType": ent["mediaType"], "digest": d, "size": n,
                         "annotations": {"org.opencontainers.image.ref.name": name}})
json.dump(idx, open(os.path.join(root, "index.json"), "w"))
PY
	skopeo copy -q --dest-tls-verify=false "oci:$T/$1:$1" "docker://$REGISTRY/$1:latest" >/dev/null 2>"$T/err" ||
		not_ok "the $1 image is pushed" "$(cat "$T/err")"
}

# a layer that does not unpack to what the image config says (its diff_id)
variant lying 'cfg["rootfs"]["diff_ids"][0] = "sha256:" + "0" * 64'
"$COVE" pull -q "$REGISTRY/lying" >/dev/null 2>"$T/err"
rc=$?
if [ $rc -ne 0 ] && grep -q "unpacks to sha256:.*but the image config says sha256:0000" "$T/err"; then ok "a layer that does not match its diff_id is refused"; else not_ok "a layer that does not match its diff_id is refused" "rc=$rc $(cat "$T/err")"; fi
expect "... and nothing is named for it" 0 "$("$COVE" images --format json | grep -c lying)"

# a layer whose gzip stream is corrupt (its CRC-32), under a digest that matches its bytes
variant crc '
layer = bytearray(open(blob(man["layers"][0]["digest"]), "rb").read())
layer[-8] ^= 0x55  # the first byte of the gzip trailer CRC-32
man["layers"][0]["digest"], man["layers"][0]["size"] = put(bytes(layer))'
"$COVE" pull -q "$REGISTRY/crc" >/dev/null 2>"$T/err"
rc=$?
if [ $rc -ne 0 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "cannot be read: the gzip stream is corrupt" "$T/err"; then ok "a layer whose gzip CRC is wrong is refused, in one line"; else not_ok "a layer whose gzip CRC is wrong is refused, in one line" "rc=$rc $(cat "$T/err")"; fi
expect "... and nothing is named for it" 0 "$("$COVE" images --format json | grep -c crc)"

# zstd layers (decoded by libzstd in the same pass): a frame that asks for a 256 MiB window, and
# a stream cut short, each under a digest that matches its bytes
zstd_variant() { # NAME PYTHON-THAT-MAKES-layer
	variant "$1" "
import subprocess, gzip
$2
man['layers'][0]['mediaType'] = 'application/vnd.oci.image.layer.v1.tar+zstd'
man['layers'][0]['digest'], man['layers'][0]['size'] = put(layer)"
}
zstd_variant zwide 'layer = bytes([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x90, 0x01, 0x00, 0x00])'
zstd_variant zcut '
tar = gzip.decompress(open(blob(man["layers"][0]["digest"]), "rb").read())
layer = subprocess.run(["zstd", "-q", "-c"], input=tar, capture_output=True, check=True).stdout[:-100]'
for v in "zwide:window larger than 128 MiB" "zcut:zstd stream is truncated"; do
	name=${v%%:*} want=${v#*:}
	"$COVE" pull -q "$REGISTRY/$name" >/dev/null 2>"$T/err"
	rc=$?
	if [ $rc -ne 0 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "cannot be read: .*$want" "$T/err"; then
		ok "a zstd layer: $want: refused, in one line"
	else
		not_ok "a zstd layer: $want: refused, in one line" "rc=$rc $(cat "$T/err")"
	fi
done
expect "... and nothing is named for them" 0 "$("$COVE" images --format json | grep -c '/z\(wide\|cut\)')"
