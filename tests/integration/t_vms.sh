#!/bin/bash
# Each container is its own VM; no QEMU outlives the CLI that started it.
. "$(dirname "$0")/lib.sh"

"$COVE" run --rm busybox cat /proc/sys/kernel/random/boot_id >"$T/a" 2>&1 &
a=$!
"$COVE" run --rm busybox cat /proc/sys/kernel/random/boot_id >"$T/b" 2>&1 &
b=$!
wait $a; ra=$?
wait $b; rb=$?
if [ $ra -eq 0 ] && [ $rb -eq 0 ] && [ -s "$T/a" ] && ! cmp -s "$T/a" "$T/b"; then
	ok "two containers at once run in two VMs (different boot_id)"
else
	not_ok "two containers at once run in two VMs (different boot_id)" "rc=$ra/$rb" "$(cat "$T/a" "$T/b")"
fi

# SIGKILL the CLI while its container runs: its QEMU must go too
"$COVE" run --rm busybox sh -c 'echo up; sleep 300' >"$T/up" 2>&1 &
cli=$!
for _ in $(seq 1 300); do grep -q up "$T/up" && break; sleep 0.1; done
qemu=$(qemu_children $cli)
if [ -z "$qemu" ]; then
	not_ok "found the container's QEMU" "$(cat "$T/up")"
else
	kill -9 $cli
	wait $cli 2>/dev/null
	gone=no
	for _ in $(seq 1 50); do
		if ! kill -0 "$qemu" 2>/dev/null || grep -q '^State:.*Z' /proc/$qemu/status 2>/dev/null; then gone=yes; break; fi
		sleep 0.1
	done
	expect "QEMU dies with a SIGKILLed CLI" yes "$gone"
	# the next command cleans up what the killed --rm run left
	"$COVE" run --rm busybox true
	n=$(ls "$COVE_ROOT/containers" | wc -l)
	expect "the next run removes the killed --rm container's directory" 0 "$n"
fi

# a command's signal from outside: SIGTERM to the CLI reaches the container's process
"$COVE" run --rm busybox sh -c 'trap "echo got-term; exit 3" TERM; echo ready; while :; do sleep 0.1; done' >"$T/sig" 2>&1 &
cli=$!
for _ in $(seq 1 300); do grep -q ready "$T/sig" && break; sleep 0.1; done
kill -TERM $cli
wait $cli
rc=$?
expect "SIGTERM is forwarded to the container" "3 got-term" "$rc $(grep got-term "$T/sig")"

# QEMU killed under a running container: cove run says so and exits 125, it does not hang
"$COVE" run --rm busybox sh -c 'echo up; sleep 300' >"$T/up2" 2>"$T/err2" &
cli=$!
for _ in $(seq 1 300); do grep -q up "$T/up2" && break; sleep 0.1; done
qemu=$(qemu_children $cli)
if [ -n "$qemu" ]; then
	kill -9 "$qemu"
	for _ in $(seq 1 100); do kill -0 $cli 2>/dev/null || break; sleep 0.1; done
	if kill -0 $cli 2>/dev/null; then
		not_ok "a killed QEMU ends cove run with 125" "cove run still running"
		kill -9 $cli
	else
		wait $cli
		rc=$?
		if [ $rc -eq 125 ] && grep -q "QEMU was killed by signal 9" "$T/err2"; then ok "a killed QEMU ends cove run with 125"; else not_ok "a killed QEMU ends cove run with 125" "rc=$rc" "$(cat "$T/err2")"; fi
	fi
else
	not_ok "a killed QEMU ends cove run with 125" "no QEMU found"
fi
