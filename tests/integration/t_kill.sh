#!/bin/bash
# SIGKILL at random points: pull, run, the supervisor, cp and rm are killed many times (the
# seed is printed on failure), then the store, the state and the run directory must hold
# nothing that no image or container owns once `rm -f --all` and `image prune` have run, no
# process may hold a file under the state directory, and everything must still work.
. "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)

registry_with_images

seed=${COVE_KILL_SEED:-$$}
RANDOM=$seed
ROUNDS=${COVE_KILL_ROUNDS:-5}

# killed MAX_MS CMD...: run CMD, SIGKILL it after a random 0..MAX_MS ms
killed() {
	local max=$1 pid
	shift
	"$@" >/dev/null 2>&1 &
	pid=$!
	sleep "$(printf '0.%03d' $((RANDOM % max)))"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}
delay() { sleep "$(printf '0.%03d' $((RANDOM % $1)))"; }

"$COVE" pull -q "$R/busybox" >/dev/null 2>&1
for i in $(seq "$ROUNDS"); do
	# pulls: the debian image (one 52 MB layer) and a three-layer one, killed mid-way
	killed 999 "$COVE" pull -q "$R/debian"
	killed 400 "$COVE" pull -q "$R/layers"
	# run, killed while it creates, boots or attaches (its supervisor may go on)
	killed 400 "$COVE" run --name run$i "$R/busybox" sh -c 'echo hi; sleep 1'
	killed 999 "$COVE" run --rm "$R/busybox" true
	# a supervisor killed while its container runs: QEMU dies with it
	"$COVE" run -d --name sup$i "$R/busybox" sleep 30 >/dev/null 2>&1
	delay 999
	pid=$(ctr_pid sup$i)
	[ "${pid:-0}" -gt 0 ] && kill -9 "$pid" 2>/dev/null
	# cp out of a stopped container (a boot just for it) and into it, killed
	killed 999 "$COVE" cp "sup$i:/bin/busybox" "$T/out$i"
	killed 999 "$COVE" cp "$top/README.md" "sup$i:/tmp/"
	# rm, killed
	killed 300 "$COVE" rm -f run$i
	killed 300 "$COVE" rm -f sup$i
done
# at last a pull of a fresh image killed early: its download is left for a later pull to resume
# (stopped first, and killed once its partial download is seen while it is stopped: a pull that
# finished its download between the look and the kill is tried again)
partials() { ls "$COVE_ROOT/images/blobs/tmp" 2>/dev/null | grep -c partial; }
for _ in 1 2 3; do
	"$COVE" image rm "$R/debian" >/dev/null 2>&1
	"$COVE" image prune >/dev/null 2>&1
	"$COVE" pull -q "$R/debian" >/dev/null 2>&1 &
	pid=$!
	wait_until 60 sh -c "ls '$COVE_ROOT/images/blobs/tmp' 2>/dev/null | grep -q partial"
	kill -STOP $pid 2>/dev/null
	left=$(partials)
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	[ "$left" = 1 ] && break
done
expect "a pull killed early leaves its download" "1" "$(partials)"
# and what a create killed between its mkdir and its config.json leaves, as it leaves it
half=$COVE_ROOT/containers/$(printf 'ab%.0s' $(seq 32))
mkdir -p "$half" "$COVE_ROOT/names" && echo half >"$half/name" && : >"$half/lock"
ln -s "$(basename "$half")" "$COVE_ROOT/names/half"
touch -d '-1 minute' "$half"
sleep 3 # past the grace a live creator gets (container_gc)

why="seed $seed (COVE_KILL_SEED=$seed reproduces)"
"$COVE" rm -f --all >"$T/rm.out" 2>&1
expect "rm -f --all after the kills" "0" "$?" "$(cat "$T/rm.out")" 
"$COVE" image prune >"$T/prune.out" 2>&1
expect "image prune after the kills" "0" "$?" "$(cat "$T/prune.out")"
expect "no container directory is left" "" "$(ls "$COVE_ROOT/containers" 2>&1)" "$why"
expect "no name is left" "" "$(ls "$COVE_ROOT/names" 2>&1)" "$why"
expect "nothing but QEMU's uid slots in the run directory" "" \
	"$(ls "$COVE_ROOT/run" 2>&1 | grep -vx qemu-uid)" "$why"
expect "no temporary blob is left" "" "$(ls "$COVE_ROOT/images/blobs/tmp" 2>&1)" "$why"
# every snapshot belongs to an image in the store
owned=$(for img in $("$COVE" image ls -q 2>/dev/null); do
	"$COVE" image inspect "$img" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Snapshot"].split("/")[-1])'
done | sort -u)
expect "every snapshot belongs to an image" "" \
	"$(ls "$COVE_ROOT/images/snapshots" | sort | comm -23 - <(echo "$owned"))" "$why"
# no process (a supervisor, a QEMU) holds anything under the state directory
holders=$(for p in /proc/[0-9]*; do
	ls -l "$p/fd" 2>/dev/null | grep -q -- "-> $COVE_ROOT/" && echo "${p#/proc/} $(cat "$p/comm" 2>/dev/null)"
done)
expect "no process holds a file under the state directory" "" "$holders" "$why"

expect "a container runs after all that, under a name a killed create held" "ok" \
	"$("$COVE" run --rm --name half "$R/busybox" echo ok 2>&1)"
"$COVE" pull -q "$R/debian" >"$T/pull.out" 2>&1
expect "and the killed pull completes" "0" "$?" "$(cat "$T/pull.out")"
