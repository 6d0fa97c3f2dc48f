#!/bin/bash
# Images from a real registry (Debian's docker-registry on 127.0.0.1): pull, run, and the root
# filesystem equals what `umoci unpack` makes of the same image.
. "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)

registry_with_images
oci=$OCI

for img in busybox layers user debian multiarch schema2 zstd; do
	if "$COVE" pull -q "$R/$img" >"$T/pull.out" 2>&1; then ok "pull $img"; else not_ok "pull $img" "$(cat "$T/pull.out")"; fi
done

# the root filesystem equals umoci's unpacking of the same image (zstd, schema2 and the
# amd64 entry of multiarch are busybox in other clothes; umoci 0.4.7 cannot read zstd)
mkdir -p "$T/mnt"
for pair in busybox:busybox layers:layers user:user debian:debian multiarch:busybox schema2:busybox zstd:busybox; do
	img=${pair%%:*} tag=${pair#*:}
	[ -d "$T/u-$tag" ] || umoci unpack --image "$oci:$tag" "$T/u-$tag" >/dev/null 2>&1
	snap=$("$COVE" image inspect "$R/$img" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Snapshot"])')
	if mount -o loop,ro "$COVE_ROOT/images/$snap" "$T/mnt" 2>"$T/mount.err"; then
		if python3 "$top/tests/integration/treediff.py" "$T/u-$tag/rootfs" "$T/mnt" >"$T/diff" 2>&1; then
			ok "$img: root filesystem equals umoci unpack ($(tail -1 "$T/diff" | cut -d' ' -f1) entries)"
		else
			not_ok "$img: root filesystem equals umoci unpack" "$(head -20 "$T/diff")"
		fi
		umount "$T/mnt"
	else
		not_ok "$img: snapshot mounts" "$(cat "$T/mount.err")"
	fi
	if [ "$(e2fsck -fn "$COVE_ROOT/images/$snap" >/dev/null 2>&1; echo $?)" = 0 ]; then ok "$img: snapshot passes e2fsck -fn"; else not_ok "$img: snapshot passes e2fsck -fn"; fi
done

# the image's config applies, with docker's override rules
expect "ENTRYPOINT + CMD of the image" "entry default-arg" "$("$COVE" run --rm "$R/user" 2>&1)"
expect "arguments replace CMD" "entry a b" "$("$COVE" run --rm "$R/user" a b 2>&1)"
expect "--entrypoint replaces ENTRYPOINT and CMD" "uid=1000 gid=1000" "$("$COVE" run --rm --entrypoint id "$R/user" 2>&1)"
expect "USER, WORKDIR and ENV of the image" "1000 /home/app 1" "$("$COVE" run --rm --entrypoint sh "$R/user" -c 'echo $(id -u) $(pwd) $APP' 2>&1)"
expect "-u and -w override the image" "0 /tmp" "$("$COVE" run --rm -u 0 -w /tmp --entrypoint sh "$R/user" -c 'echo $(id -u) $(pwd)' 2>&1)"
expect "Debian runs" "$(cat "$T/u-debian/rootfs/etc/debian_version")" "$("$COVE" run --rm "$R/debian" cat /etc/debian_version 2>&1)"
expect "multiarch picks this host's platform" x86_64 "$("$COVE" run --rm "$R/multiarch" uname -m 2>&1)"

# run pulls what is missing; a second pull costs one manifest request and stores nothing new
"$COVE" image rm "$R/busybox" >/dev/null
nblobs=$(ls "$COVE_ROOT/images/blobs/sha256" | wc -l)
expect "run pulls a missing image" hi "$("$COVE" run --rm "$R/busybox" echo hi 2>/dev/null)"
"$COVE" pull -q "$R/busybox" >/dev/null
expect "pulling again stores nothing new" "$nblobs" "$(ls "$COVE_ROOT/images/blobs/sha256" | wc -l)"

# two pulls of the same image at once both succeed and store it once
"$COVE" image rm "$R/layers" >/dev/null
"$COVE" image prune >/dev/null
"$COVE" pull -q "$R/layers" >"$T/p1" 2>&1 & p1=$!
"$COVE" pull -q "$R/layers" >"$T/p2" 2>&1 & p2=$!
wait $p1; r1=$?
wait $p2; r2=$?
expect "two pulls at once both succeed" "0 0" "$r1 $r2" "$(cat "$T/p1" "$T/p2")"
n=$(ls "$COVE_ROOT/images/index.json" >/dev/null && "$COVE" image ls --format json | grep -c "\"$R/layers:latest\"")
expect "... and the image is listed once" 1 "$n"
leftovers=$(find "$COVE_ROOT/images/blobs" -mindepth 1 -maxdepth 1 ! -name sha256 -exec find {} -type f \; | wc -l)
expect "... with no temp files left" 0 "$leftovers"

# ls, tag, inspect, rm
"$COVE" image tag "$R/busybox" "$R/other:v1"
expect "tag adds a name" "1" "$("$COVE" image ls | grep -c "$R/other *v1")"
"$COVE" image inspect --format json "$R/user" | python3 -c 'import json,sys; c=json.load(sys.stdin)[0]["ContainerConfig"]; sys.exit(0 if c["User"]=="1000:1000" and c["Entrypoint"]==["/bin/echo","entry"] else 1)' && ok "inspect --format json shows the image config" || not_ok "inspect --format json shows the image config"
id=$("$COVE" image ls -q | head -1)
if "$COVE" image inspect "$id" >/dev/null 2>&1; then ok "inspect by image ID"; else not_ok "inspect by image ID"; fi
"$COVE" run --name keep "$R/other:v1" true
"$COVE" image rm "$R/other:v1" 2>"$T/err"
rc=$?
if [ $rc -ne 0 ] && grep -q "used by container keep" "$T/err"; then ok "rm refuses an image a container uses"; else not_ok "rm refuses an image a container uses" "rc=$rc $(cat "$T/err")"; fi
expect "rm -f removes it anyway" 0 "$("$COVE" image rm -f "$R/other:v1" >/dev/null 2>&1; echo $?)"

# bad input: one line, non-zero, nothing half-written
one_line() { # NAME PATTERN CMD...
	local name=$1 pat=$2; shift 2
	"$@" >/dev/null 2>"$T/err"; local rc=$?
	if [ $rc -ne 0 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q -- "$pat" "$T/err"; then ok "$name"; else not_ok "$name" "rc=$rc" "$(cat "$T/err")"; fi
}
one_line "unknown tag" "manifest unknown" "$COVE" pull -q "$R/busybox:nosuchtag"
one_line "unknown repository" "unknown" "$COVE" pull -q "$R/nosuchrepo"
one_line "invalid reference" "invalid reference" "$COVE" pull -q "$R/UPPER"
one_line "no such platform in the index" "linux/amd64" "$COVE" pull -q --platform linux/s390x "$R/multiarch"
one_line "a registry that is not there" "127.0.0.1:1" "$COVE" pull -q 127.0.0.1:1/x
one_line "a digest the registry does not have" "sha256" "$COVE" pull -q "$R/busybox@sha256:0000000000000000000000000000000000000000000000000000000000000000"
one_line "run of an image that cannot be pulled" "manifest unknown" "$COVE" run --rm "$R/nosuchrepo" true
"$COVE" image ls >/dev/null 2>&1 && ok "the store is still readable after the failures" || not_ok "the store is still readable after the failures"

# save and load: OCI and docker archives round-trip, real tools read them
"$COVE" save -o "$T/layers-oci.tar" "$R/layers" && ok "save an OCI archive" || not_ok "save an OCI archive"
"$COVE" save --format docker -o "$T/layers-docker.tar" "$R/layers" && ok "save a docker archive" || not_ok "save a docker archive"
want=$("$COVE" image ls --format json | python3 -c 'import json,sys; print([i["digest"] for i in json.load(sys.stdin) if i["name"].endswith("/layers:latest")][0])')
"$COVE" image rm "$R/layers" >/dev/null
expect "load an OCI archive" "Loaded image: $R/layers:latest" "$("$COVE" load -i "$T/layers-oci.tar" 2>&1)"
got=$("$COVE" image ls --format json | python3 -c 'import json,sys; print([i["digest"] for i in json.load(sys.stdin) if i["name"].endswith("/layers:latest")][0])')
expect "... with the same manifest digest" "$want" "$got"
expect "... and it runs" "layer two" "$("$COVE" run --rm "$R/layers" cat /etc/motd 2>&1)"
"$COVE" image rm "$R/layers" >/dev/null
expect "load a docker archive" "Loaded image: $R/layers:latest" "$("$COVE" load <"$T/layers-docker.tar" 2>&1)"
expect "... and it runs" "layer two" "$("$COVE" run --rm "$R/layers" cat /etc/motd 2>&1)"
skopeo inspect "docker-archive:$T/layers-docker.tar" >/dev/null 2>&1 && ok "skopeo reads the docker archive" || not_ok "skopeo reads the docker archive"
skopeo copy -q "docker://$R/user:latest" --src-tls-verify=false "docker-archive:$T/user-skopeo.tar:example.com/user:v1" >/dev/null 2>&1
expect "load a docker archive that skopeo wrote" "Loaded image: example.com/user:v1" "$("$COVE" load -i "$T/user-skopeo.tar" 2>&1)"
expect "load an OCI layout directory" 0 "$("$COVE" load -i "$oci" >/dev/null 2>&1; echo $?)"
printf 'not a tar' >"$T/junk.tar"
"$COVE" load -i "$T/junk.tar" >/dev/null 2>"$T/err"; rc=$?
if [ $rc -ne 0 ] && [ "$(wc -l <"$T/err")" -eq 1 ]; then ok "load refuses junk in one line"; else not_ok "load refuses junk in one line" "rc=$rc $(cat "$T/err")"; fi

# the snapshot's size is configurable (sparse: it costs only what is written)
"$COVE" image rm -f "$R/user" >/dev/null 2>&1
"$COVE" image prune >/dev/null 2>&1
COVE_IMAGE_SIZE=8g "$COVE" pull -q "$R/user" >/dev/null
size=$("$COVE" run --rm --entrypoint df "$R/user" -m / 2>/dev/null | awk 'NR==2 {print $2}')
if [ -n "$size" ] && [ "$size" -gt 7000 ] && [ "$size" -le 8192 ]; then ok "COVE_IMAGE_SIZE=8g gives an 8 GiB root filesystem (${size} MB)"; else not_ok "COVE_IMAGE_SIZE=8g gives an 8 GiB root filesystem" "size=$size"; fi

# a pull killed while it writes the snapshot leaves a half-written file: the next pull of the
# image, and image prune, take it back (its writer's lock is free)
killed_pull() {
	COVE_ROOT="$T/killed" "$COVE" pull -q "$R/debian" >/dev/null 2>&1 &
	local pid=$!
	# killed once its temp file holds a few MB (so that what prune reclaims is the snapshot's)
	wait_until 120 sh -c "du -m '$T/killed/images/snapshots/'*.ext4.* 2>/dev/null | awk '\$1 >= 4' | grep -q ."
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
}
leftovers() { ls "$T/killed/images/snapshots/" 2>/dev/null | grep -c '\.ext4\.'; }
killed_pull
expect "a pull killed mid-snapshot leaves its temp file" "1" "$(leftovers)"
COVE_ROOT="$T/killed" "$COVE" pull -q "$R/debian" >/dev/null 2>&1
expect "the next pull takes it back" "0" "$(leftovers)"
COVE_ROOT="$T/killed" "$COVE" image rm "$R/debian" >/dev/null 2>&1
killed_pull
reclaimed=$(COVE_ROOT="$T/killed" "$COVE" image prune 2>&1)
expect "image prune takes it back" "0 yes" "$(leftovers) $(echo "$reclaimed" | awk '/reclaimed/ { print ($4 > 1) ? "yes" : "no" }')"

# three pulls of one image at once into an empty store: all succeed, and the snapshot the first
# one to finish made stays (a container may already use it as its backing file): each sees the
# same file when it is done; nothing is left over
together() {
	COVE_ROOT="$T/together" "$COVE" pull -q "$R/debian" >"$T/together.$1" 2>&1
	echo "$? $(stat -c %i "$T/together/images/snapshots/"*.ext4 2>&1)" >>"$T/together.seen"
}
together 1 & p1=$!
together 2 & p2=$!
together 3 & p3=$!
wait $p1 $p2 $p3
expect "three pulls of one image at once all succeed" "0 0 0" "$(cut -d' ' -f1 "$T/together.seen" | xargs)"
expect "each of them sees the snapshot the first one made, nothing left over" "1 1" \
	"$(cut -d' ' -f2- "$T/together.seen" | sort -u | wc -l) $(ls "$T/together/images/snapshots/" | wc -l)"
