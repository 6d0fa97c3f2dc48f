#!/bin/bash
# Robustness: the CLI, QEMU or the supervisor SIGKILLed at bad moments. The container's state
# stays truthful, and the next command cleans up.
. "$(dirname "$0")/lib.sh"

# gone CTR ID PID...: nothing of CTR left (directory, name, socket, processes); prints what is
gone() {
	local ctr=$1 id=$2 left=""
	shift 2
	[ -e "$COVE_ROOT/containers/$id" ] && left="$left dir"
	[ -L "$COVE_ROOT/names/$ctr" ] && left="$left name"
	ls "$COVE_ROOT/run" 2>/dev/null | grep -q "^${id:0:12}" && left="$left socket"
	for p in "$@"; do wait_gone "$p" 5 || left="$left pid:$p($(cat /proc/$p/comm 2>/dev/null))"; done
	echo "$left"
}
running() { [ "$(inspect_field "$1" State.Running)" = true ]; }

# ---- the CLI SIGKILLed during an attached run: the container lives on ----
"$COVE" run --name r busybox sh -c 'echo up; sleep 300' >"$T/up" 2>&1 &
cli=$!
up() { grep -q up "$T/up"; }
wait_until 60 up
kill -9 $cli
wait $cli 2>/dev/null
sleep 1 # (it must still run a moment later, not only as the CLI dies)
r_id=$(inspect_field r Id)
r_pid=$(ctr_pid r)
r_qemu=$(qemu_children "$r_pid")
if "$COVE" ls 2>&1 | awk '$NF == "r"' | grep -q ' Up ' && [ -n "$r_qemu" ] && alive "$r_pid"; then
	ok "a SIGKILLed 'cove run' leaves its container running"
else
	not_ok "a SIGKILLed 'cove run' leaves its container running" "$("$COVE" ls -a 2>&1)" "supervisor=$r_pid qemu=$r_qemu" "$(cat "$T/up")"
fi

# ---- the CLI SIGKILLed during exec ----
"$COVE" exec r sh -c 'echo in-exec; sleep 300' >"$T/ex" 2>&1 &
cli=$!
in_exec() { grep -q in-exec "$T/ex"; }
wait_until 30 in_exec
kill -9 $cli
wait $cli 2>/dev/null
out=$("$COVE" exec r echo next 2>&1)
if [ "$out" = next ] && running r; then ok "after a SIGKILLed exec the container runs and exec works"; else not_ok "after a SIGKILLed exec the container runs and exec works" "exec: $out" "running: $(inspect_field r State.Running)" "$(cat "$T/ex")"; fi

out=$("$COVE" rm -f r 2>&1)
expect "rm -f cleans up the container of the killed run" "0 r ''" "$? $out '$(gone r "$r_id" "$r_pid" $r_qemu)'"

# ---- the CLI SIGKILLed during stop (a TERM-ignoring process, -t 30) ----
"$COVE" run -d --name st busybox sh -c 'trap "" TERM; while :; do sleep 1; done' >/dev/null 2>"$T/err" || not_ok "run -d st" "$(cat "$T/err")"
st_id=$(inspect_field st Id)
st_pid=$(ctr_pid st)
st_qemu=$(qemu_children "$st_pid")
"$COVE" stop -t 30 st >/dev/null 2>&1 &
cli=$!
sleep 1 # (stop has sent its request and waits; nothing outside shows that)
kill -9 $cli
wait $cli 2>/dev/null
status=$(inspect_field st State.Status)
alive "$st_pid" && sup=alive || sup=dead
ls_state=$("$COVE" ls -a --format json --filter name=st 2>/dev/null | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["State"])' 2>/dev/null)
case "$status/$sup/$ls_state" in
running/alive/running | exited/dead/exited) ok "after a SIGKILLed stop, inspect and ls tell the truth ($status)" ;;
*) not_ok "after a SIGKILLed stop, inspect and ls tell the truth" "inspect: $status, ls: $ls_state, supervisor $st_pid: $sup" ;;
esac
# rm -f kills at once: it does not wait for the 30 s of the stop that was under way
start=$(now)
out=$("$COVE" rm -f st 2>&1)
rc=$?
took=$(elapsed "$start")
expect "rm -f after a SIGKILLed stop" "0 st ''" "$rc $out '$(gone st "$st_id" "$st_pid" $st_qemu)'"
if [ "$took" -le 5 ]; then ok "rm -f does not wait out the earlier stop's timeout (${took}s)"; else not_ok "rm -f does not wait out the earlier stop's timeout" "took ${took}s (stop -t 30 was under way)"; fi

# ---- the CLI SIGKILLed during rm -f ----
# rm -f takes a tenth of a second; to kill it midway for sure, the supervisor is frozen
# (SIGSTOP) while rm -f has sent its request and waits, then thawed once rm -f is dead
"$COVE" run -d --name rmk busybox sleep 300 >/dev/null 2>"$T/err" || not_ok "run -d rmk" "$(cat "$T/err")"
rmk_id=$(inspect_field rmk Id)
rmk_pid=$(ctr_pid rmk)
rmk_qemu=$(qemu_children "$rmk_pid")
kill -STOP "$rmk_pid"
"$COVE" rm -f rmk >/dev/null 2>&1 &
cli=$!
sleep 0.5
kill -9 $cli 2>/dev/null && rm_killed=yes || rm_killed="no, it had finished"
wait $cli 2>/dev/null
kill -CONT "$rmk_pid"
"$COVE" ls -a >"$T/ls" 2>&1
expect "ls -a works after a SIGKILLed rm -f (killed midway: $rm_killed)" 0 $? "$(cat "$T/ls")"
out=$("$COVE" rm -f rmk 2>&1)
expect "rm -f again after a SIGKILLed rm -f" "0 rmk" "$? $out"
expect "nothing is left of it" "'' ''" "'$("$COVE" ls -aq 2>&1)' '$(gone rmk "$rmk_id" "$rmk_pid" $rmk_qemu)'"

# ---- QEMU SIGKILLed under a detached container ----
"$COVE" run -d --name dq busybox sleep 300 >/dev/null 2>"$T/err" || not_ok "run -d dq" "$(cat "$T/err")"
dq_pid=$(ctr_pid dq)
dq_qemu=$(qemu_children "$dq_pid")
if [ -z "$dq_qemu" ]; then
	not_ok "found dq's QEMU under its supervisor" "supervisor=$dq_pid"
else
	kill -9 $dq_qemu
	exited() { [ "$(inspect_field "$1" State.Status)" = exited ]; }
	if wait_until 5 exited dq; then ok "a killed QEMU: the container shows as exited"; else not_ok "a killed QEMU: the container shows as exited" "$(inspect_field dq State.Status)"; fi
	err=$(inspect_field dq State.Error)
	if echo "$err" | grep -qi -e qemu -e 'signal 9'; then ok "a killed QEMU: .State.Error says so ($err)"; else not_ok "a killed QEMU: .State.Error says so" "Error: $err"; fi
	if "$COVE" ls -a | awk '$NF == "dq"' | grep -q ' Exited ('; then ok "a killed QEMU: ls -a shows Exited"; else not_ok "a killed QEMU: ls -a shows Exited" "$("$COVE" ls -a 2>&1)"; fi
	if wait_gone "$dq_pid" 5; then ok "a killed QEMU: its supervisor exits"; else not_ok "a killed QEMU: its supervisor exits" "supervisor $dq_pid alive"; fi
fi

# ---- the supervisor SIGKILLed: exited, its QEMU gone too; start brings it back ----
out=$("$COVE" start dq 2>&1)
expect "start after a killed QEMU" "0 dq" "$? $out"
dq_pid=$(ctr_pid dq)
dq_qemu=$(qemu_children "$dq_pid")
if [ -z "$dq_qemu" ] || [ "$dq_pid" = 0 ]; then
	not_ok "found dq's supervisor and QEMU" "supervisor=$dq_pid qemu=$dq_qemu"
else
	kill -9 "$dq_pid"
	not_running() { [ "$(inspect_field "$1" State.Running)" = false ]; }
	if wait_until 5 not_running dq; then ok "a killed supervisor: the container is not running ($(inspect_field dq State.Status))"; else not_ok "a killed supervisor: the container is not running" "$(inspect_field dq State.Status)"; fi
	expect "a killed supervisor: inspect says exited" exited "$(inspect_field dq State.Status)"
	if ! "$COVE" ls | awk '$NF == "dq"' | grep -q .; then ok "a killed supervisor: ls no longer lists it"; else not_ok "a killed supervisor: ls no longer lists it" "$("$COVE" ls 2>&1)"; fi
	left=""
	for q in $dq_qemu; do wait_gone "$q" 5 || left="$left $q"; done
	expect "a killed supervisor: its QEMU is gone too" "" "$left"
	out=$("$COVE" start dq 2>&1)
	expect "start after a killed supervisor" "0 dq" "$? $out"
	expect "it runs again: exec works" "running hi" "$(inspect_field dq State.Status) $("$COVE" exec dq echo hi 2>&1)"
fi
