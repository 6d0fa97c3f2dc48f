#!/bin/bash
# A hostile guest: a cove-init of the test's own (tests/hostile/hostile_init.c, in an initramfs
# passed as COVE_INITRD) that says HELLO, takes START and then attacks the host with the
# command's name: malformed and oversized frames, noise, escape sequences, lies in EXIT and
# STATS, frames for streams nobody opened, a console flood, silence. Each ends in one clear line
# or in a normal result; the host keeps bounded logs, and every command still works afterwards.
. "$(dirname "$0")/lib.sh"

hostile=$(dirname "$COVE")/tests/hostile/initramfs.cpio.gz
if [ ! -f "$hostile" ]; then
	not_ok "the hostile initramfs is built" "missing: $hostile"
	exit 0
fi
export COVE_INITRD=$hostile

# ATTACK PATTERN: run --rm fails with 125 and one line matching PATTERN, free of control
# characters
fails_cleanly() {
	"$COVE" run --rm busybox "$1" >"$T/out" 2>"$T/err"
	local rc=$?
	if [ $rc -eq 125 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "$2" "$T/err" &&
		! LC_ALL=C grep -q '[[:cntrl:]]' "$T/err"; then
		ok "$1: one line, exit 125"
	else
		not_ok "$1: one line, exit 125" "rc=$rc" "$(cat -v "$T/err" | cut -c1-300)"
	fi
}
fails_cleanly huge-frame "the guest sent a malformed message"
fails_cleanly garbage "the guest sent a malformed message"
fails_cleanly bad-type "the guest sent a malformed message"
fails_cleanly exit-weird "the guest sent a malformed EXIT message"
fails_cleanly evil-error "]0;pwned"

out=$("$COVE" run --rm busybox wrong-streams 2>"$T/err")
expect "frames for streams nobody opened, a second HELLO: ignored" "still here 0" "$out $?" \
	"$(cat -v "$T/err")"

# the console, written by the guest as fast as it can, costs the host at most 2 x 256 KiB
out=$("$COVE" run --name flood busybox console-flood 700 2>"$T/err")
expect "a console flood: the container still runs to its end" "flooded" "$out" "$(cat "$T/err")"
dir=$COVE_ROOT/containers/$(inspect_field flood Id)
size=$(stat -c %s "$dir/boot.log" 2>/dev/null || echo 0)
old=$(stat -c %s "$dir/boot.log.1" 2>/dev/null || echo 0)
if [ "$size" -le 262144 ] && [ "$old" -le 262144 ] && [ "$old" -gt 0 ]; then
	ok "a console flood: boot.log rotated, each file at most 256 KiB ($size + $old bytes)"
else
	not_ok "a console flood: boot.log rotated, each file at most 256 KiB" "boot.log $size, boot.log.1 $old"
fi
"$COVE" rm flood >/dev/null 2>&1

# lies in STATS are cut down to what can be true of this VM
"$COVE" run -d --name liar --memory 256m busybox stats-lie >/dev/null 2>"$T/err"
got=$("$COVE" stats --no-stream --format json liar 2>&1 | python3 -c '
import json, sys
s = json.loads(sys.stdin.readline())
print(s["MemLimit"], s["MemUsage"] <= s["MemLimit"], s["PIDs"] <= 4194304,
      min(s["BlockRead"], s["BlockWrite"], s["NetRx"], s["NetTx"]) >= 0)' 2>&1)
expect "stats: a guest's lies are kept to what this VM can have" "268435456 True True True" "$got"
"$COVE" rm -f liar >/dev/null 2>&1

# a guest that ignores signals and SHUTDOWN is still stopped (SIGTERM, SIGKILL, SHUTDOWN, then
# QEMU is killed), and one that sends half a frame is still removed
"$COVE" run -d --name mute busybox silent >/dev/null 2>"$T/err"
timeout 60 "$COVE" stop -t 1 mute >/dev/null 2>"$T/err"
expect "a guest deaf to stop is stopped" "0 exited" "$? $(inspect_field mute State.Status)" "$(cat "$T/err")"
"$COVE" run -d --name drip busybox drip >/dev/null 2>"$T/err"
timeout 60 "$COVE" rm -f drip >/dev/null 2>"$T/err"
expect "a guest that stops mid-frame is removed" "0" "$?" "$(cat "$T/err")"
"$COVE" rm mute >/dev/null 2>&1

# and afterwards: nothing left behind, and cove works with the real guest
expect "no container is left" "" "$("$COVE" ls -aq)"
expect "no socket is left in the run directory" "" "$(ls "$COVE_ROOT/run" | grep -v '^qemu-uid$')"
unset COVE_INITRD
expect "the real guest still runs" "ok" "$("$COVE" run --rm busybox echo ok 2>&1)"
