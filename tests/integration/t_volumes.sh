#!/bin/bash
# Bind mounts (virtio-9p, served by the container's confined QEMU) and volumes (an ext4 disk of
# their own, or a shared directory): what a user sees on both sides, and what a hostile guest
# cannot do to the host through them.
. "$(dirname "$0")/lib.sh"

run() { "$COVE" run --rm --network none "$@"; }
S=$T/src
mkdir -p "$S" && echo hello >"$S/a.txt" && chmod 644 "$S/a.txt"

# ---- a host directory -------------------------------------------------------------------------
out=$(run -v "$S:/src" busybox sh -c 'ls /src; cat /src/a.txt; echo new >/src/out; chmod 640 /src/out
	echo owned >/src/own; chown 1234:5678 /src/own; ln -s a.txt /src/lnk; mkdir /src/d
	touch -d "2020-01-02 03:04:05" /src/a.txt' 2>&1)
expect "the container sees the host's directory" "a.txt hello" "$(echo $out)"
expect "the host sees the container's file, content and mode" "new 640 0:0" \
	"$(cat "$S/out") $(stat -c '%a %u:%g' "$S/out")"
expect "owners set in the container are the host's (root)" "1234:5678" "$(stat -c %u:%g "$S/own")"
expect "symlinks and mtimes round-trip" "a.txt 2020-01-02 03:04:05" \
	"$(readlink "$S/lnk") $(date -d @"$(stat -c %Y "$S/a.txt")" '+%F %T')"

# 100 MiB and 5,000 small files, both ways, byte for byte
mkdir -p "$S/up"
head -c 100M /dev/urandom >"$S/up/big"
mkdir -p "$S/up/tree" && (cd "$S/up/tree" && for d in $(seq 50); do mkdir $d; for f in $(seq 100); do echo "$d/$f" >$d/$f; done; done)
sum_tree='cd /src/$1 && find . -type f | sort | xargs cat | sha256sum | cut -c1-64'
got=$(run -v "$S:/src" busybox sh -c "sha256sum /src/up/big | cut -c1-64; $sum_tree" sh up/tree 2>&1)
want="$(sha256sum "$S/up/big" | cut -c1-64) $(cd "$S/up/tree" && find . -type f | sort | xargs cat | sha256sum | cut -c1-64)"
expect "the guest reads 100 MiB and 5000 files as the host wrote them" "$want" "$(echo $got)"
got=$(run -v "$S:/src" busybox sh -c 'dd if=/dev/urandom of=/src/down bs=1M count=100 2>/dev/null
	sha256sum /src/down | cut -c1-64; mkdir /src/t2; cd /src/t2
	for d in $(seq 50); do mkdir $d; for f in $(seq 100); do echo "$d-$f" >$d/$f; done; done
	find . -type f | sort | xargs cat | sha256sum | cut -c1-64' 2>&1)
want="$(sha256sum "$S/down" | cut -c1-64) $(cd "$S/t2" && find . -type f | sort | xargs cat | sha256sum | cut -c1-64)"
expect "the host reads 100 MiB and 5000 files as the guest wrote them" "$want" "$(echo $got)"
expect "5000 files made in the guest are on the host" "5000" "$(find "$S/t2" -type f | wc -l)"
rm -rf "$S/up" "$S/down" "$S/t2"

# read-only, with -v :ro and --mount readonly; the host holds QEMU's view read-only too
out=$(run -v "$S:/src:ro" busybox sh -c 'echo x >/src/ro1 2>&1; echo rc=$?' 2>&1)
expect "-v :ro refuses writes" "rc=1" "$(echo "$out" | tail -1)"
out=$(run --mount "type=bind,src=$S,dst=/src,readonly" busybox sh -c 'touch /src/ro2 2>/dev/null; echo rc=$?' 2>&1)
expect "--mount readonly refuses writes" "rc=1" "$out"
[ ! -e "$S/ro1" ] && [ ! -e "$S/ro2" ] && ok "nothing was written through read-only mounts" ||
	not_ok "nothing was written through read-only mounts"
"$COVE" run -d --name ro --network none -v "$S:/src:ro" -v "$S/a.txt:/etc/one.txt" busybox sleep 60 >/dev/null
q=$(qemu_children "$(ctr_pid ro)")
expect "QEMU's own view of a :ro share is a read-only mount" "ro" \
	"$(awk '$5 == "/share/0" { split($6, o, ","); print o[1] }' "/proc/$q/mountinfo")"
expect "a single-file bind shows QEMU that file alone" "a.txt" "$(ls "/proc/$q/root/share/1" 2>&1)"
expect "the container sees the single file" "hello" "$("$COVE" exec ro cat /etc/one.txt 2>&1)"
"$COVE" rm -f ro >/dev/null

# ---- a hostile root in the guest --------------------------------------------------------------
H=$T/hostile && mkdir -p "$H"
run -v "$H:/h" busybox sh -c "
	ln -s / /h/root; echo pwned >/h/root$T/escaped-link
	ln -s $T /h/up; echo pwned >/h/up/escaped-link2
	echo pwned >/h/../../escaped-dotdot
	mknod /h/null c 1 3; mknod /h/disk b 254 0
	cp /bin/busybox /h/bb; chmod u+s /h/bb; chmod 4755 /h/bb; chmod g+s /h/bb
	echo x >/h/sgid; chmod 2755 /h/sgid
	ln /etc/passwd /h/pw
	mkfifo /h/fifo # (QEMU 7.2 9p fails it: ENXIO)" >/dev/null 2>&1
expect "nothing escaped the shared directory (links, ..)" "" \
	"$(ls "$T"/escaped* /escaped-dotdot 2>/dev/null)"
expect "no device node on the host" "" "$(find "$H" -type b -o -type c)"
expect "no setuid or setgid file on the host" "" "$(find "$H" -perm /6000)"
expect "no hard link to a file outside" "" "$(ls "$H/pw" 2>/dev/null)"
expect "the host tree holds only what it may" "bb root sgid up" "$(ls "$H" | tr '\n' ' ' | sed 's/ $//')"

# ---- named volumes -----------------------------------------------------------------------------
run -v data:/var/lib/data busybox sh -c 'echo kept >/var/lib/data/f' >/dev/null 2>&1
expect "a named volume is made on first use and outlives its container" "kept" \
	"$(run -v data:/var/lib/data busybox cat /var/lib/data/f 2>&1)"
expect "volume ls lists it" "data" "$("$COVE" volume ls -q)"
expect "volume inspect shows it" "data local block" \
	"$("$COVE" volume inspect data | python3 -c 'import json,sys; v=json.load(sys.stdin)[0]; print(v["Name"], v["Driver"], v["Options"]["type"])')"
pw=root:x:0:0:root:/root:/bin/sh
expect "an empty volume is filled from the image's content at its path" "$pw $pw" \
	"$(run -v etc:/etc busybox head -1 /etc/passwd 2>&1) $(run -v etc:/x busybox head -1 /x/passwd 2>&1)"
"$COVE" run -d --name holder --network none -v data:/var/lib/data busybox sleep 60 >/dev/null
one_line_125 "a second running container cannot mount the same block volume" "in use by running container holder" \
	"$COVE" run --rm --network none -v data:/d busybox true
one_line_125 "volume rm of a volume in use is refused" "in use by container holder" "$COVE" volume rm data
"$COVE" rm -f holder >/dev/null

"$COVE" volume create --opt type=dir shared >/dev/null
"$COVE" run -d --name wa --network none -v shared:/s busybox sh -c 'echo from-a >/s/a; sleep 60' >/dev/null
wait_until 30 test -e "$T/state/volumes/shared/_data/a"
expect "a dir volume is shared live by two running containers" "from-a" \
	"$("$COVE" run --rm --network none -v shared:/s busybox cat /s/a 2>&1)"
"$COVE" rm -f wa >/dev/null

# cp into a stopped container lands in its volume, as docker's does
"$COVE" create --name cpv --network none -v cpdata:/data busybox true >/dev/null
echo copied >"$T/cpfile"
"$COVE" cp "$T/cpfile" cpv:/data/ >/dev/null 2>&1
expect "cp into a stopped container's volume path writes the volume" "copied" \
	"$(run -v cpdata:/d busybox cat /d/cpfile 2>&1)"
"$COVE" rm cpv >/dev/null

# ---- anonymous volumes, --volumes-from, rm -v ------------------------------------------------
"$COVE" create --name va --network none -v /anon -v named2:/n busybox true >/dev/null
n=$("$COVE" volume ls -q | wc -l)
"$COVE" run --rm --network none --volumes-from va busybox sh -c 'echo shared >/anon/f; echo n >/n/f' >/dev/null 2>&1
expect "--volumes-from mounts another container's volumes" "shared" \
	"$("$COVE" run --rm --network none --volumes-from va:ro busybox cat /anon/f 2>&1)"
"$COVE" rm -v va >/dev/null
expect "rm -v removes its anonymous volume, not the named one" "$((n - 1)) named2" \
	"$("$COVE" volume ls -q | wc -l) $("$COVE" volume ls -q | grep named2)"
before=$("$COVE" volume ls -q | wc -l)
run -v /anon2 busybox true >/dev/null 2>&1
expect "--rm removes the anonymous volumes it made" "$before" "$("$COVE" volume ls -q | wc -l)"
# an image's VOLUME: a fresh volume, filled from the image, gone with rm -v
registry_with_images
"$COVE" run --name iv --network none "$R/volume" sh -c 'cat /data/seed; echo mine >/data/mine' >"$T/iv" 2>"$T/iv.err"
expect "an image's VOLUME gets a fresh volume filled from the image" "seeded $((before + 1))" \
	"$(cat "$T/iv") $("$COVE" volume ls -q | wc -l)"
expect "inspect shows the container's mounts" "volume /data True" \
	"$(inspect_field iv Mounts | python3 -c 'import ast,sys; m=ast.literal_eval(sys.stdin.read())[0]; print(m["Type"], m["Destination"], m["RW"])')"
"$COVE" rm -v iv >/dev/null
expect "rm -v removes it" "$before" "$("$COVE" volume ls -q | wc -l)"

# ---- a killed VM, a damaged image --------------------------------------------------------------
"$COVE" run -d --name writer --network none -v data:/var/lib/data busybox \
	sh -c 'i=0; while :; do echo $i >/var/lib/data/n.$((i % 50)); i=$((i+1)); done' >/dev/null
sleep 3
kill -9 "$(ctr_pid writer)"
wait_until 10 sh -c "! '$COVE' ps -q | grep -q ." || true
expect "after SIGKILL the volume is free and mounts again" "kept" \
	"$(run -v data:/var/lib/data busybox cat /var/lib/data/f 2>&1)"
e2fsck -fn "$T/state/volumes/data/disk.img" >"$T/fsck" 2>&1
expect "after SIGKILL and a journal replay the volume is consistent (e2fsck -fn)" "0" "$?" "$(tail -3 "$T/fsck")"
"$COVE" rm -f writer >/dev/null 2>&1

"$COVE" volume create broken >/dev/null
dd if=/dev/zero of="$T/state/volumes/broken/disk.img" bs=1k seek=1 count=1 conv=notrunc 2>/dev/null
one_line_125 "a volume that fails e2fsck is reported, not mounted" "e2fsck" \
	"$COVE" run --rm --network none -v broken:/b busybox true

# ---- bad input ------------------------------------------------------------------------------
one_line_125 "-v with a relative host path" "must be absolute" "$COVE" run --rm -v ./x:/x busybox true
one_line_125 "-v with an unknown option" "unknown option 'bogus'" "$COVE" run --rm -v "$S:/x:bogus" busybox true
one_line_125 "--mount of a missing bind source" "does not exist" \
	"$COVE" run --rm --mount type=bind,src=/nonexistent-cove,dst=/x busybox true
one_line_125 "-v over the root directory" "root directory" "$COVE" run --rm -v "$S:/" busybox true
one_line_125 "volume rm of a volume that is not there" "no such volume" "$COVE" volume rm nosuch
one_line_125 "volume create with a bad option" "invalid --opt" "$COVE" volume create --opt size=huge v
expect "volume prune -a removes what no container uses" "0" \
	"$("$COVE" volume prune -a >/dev/null; "$COVE" volume ls -q | wc -l)"
