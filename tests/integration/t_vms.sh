#!/bin/bash
# Each container is its own VM, run by the container's supervisor (not by the CLI: a SIGKILLed
# CLI leaves its container running, see t_crash.sh).
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

# a command's signal from outside: SIGTERM to the CLI reaches the container's process
"$COVE" run --rm busybox sh -c 'trap "echo got-term; exit 3" TERM; echo ready; while :; do sleep 0.1; done' >"$T/sig" 2>&1 &
cli=$!
for _ in $(seq 1 300); do grep -q ready "$T/sig" && break; sleep 0.1; done
kill -TERM $cli
wait $cli
rc=$?
expect "SIGTERM is forwarded to the container" "3 got-term" "$rc $(grep got-term "$T/sig")"

# QEMU killed under a running container: cove run says so and exits 125, it does not hang
# (QEMU is the child of the container's supervisor, whose pid inspect gives)
"$COVE" run --rm --cidfile "$T/cid" busybox sh -c 'echo up; sleep 300' >"$T/up2" 2>"$T/err2" &
cli=$!
for _ in $(seq 1 300); do grep -q up "$T/up2" && break; sleep 0.1; done
sup=$(ctr_pid "$(cat "$T/cid" 2>/dev/null)")
qemu=$(qemu_children "${sup:-none}")
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
	# --rm: nothing is left of it, its supervisor included
	n=$(ls "$COVE_ROOT/containers" | wc -l)
	if [ "$n" -eq 0 ] && wait_gone "$sup" 5; then ok "a killed QEMU: the --rm container and its supervisor are gone"; else not_ok "a killed QEMU: the --rm container and its supervisor are gone" "containers: $n, supervisor $sup alive: $(alive "$sup" && echo yes || echo no)"; fi
else
	not_ok "a killed QEMU ends cove run with 125" "no QEMU found under the supervisor '$sup'" "$(cat "$T/up2" "$T/err2")"
fi
