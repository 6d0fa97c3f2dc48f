#!/bin/bash
# exec into a running container: its namespaces, environment, stdio, exit codes; then ten
# containers started at once, and removed at once without a trace.
. "$(dirname "$0")/lib.sh"

"$COVE" run -d --name c -e CV=from-run -h exechost busybox sh -c 'echo main-up; exec sleep 300' >/dev/null 2>"$T/err" ||
	not_ok "run -d c" "$(cat "$T/err")"

# stats of the running container (one process; 512m VM; the host pays something for it)
"$COVE" stats --no-stream --format json c >"$T/stats" 2>&1
if python3 - "$T/stats" <<'EOF_PY' >"$T/why" 2>&1; then ok "stats --no-stream --format json"; else not_ok "stats --no-stream --format json" "$(cat "$T/why" "$T/stats")"; fi
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, "%d lines" % len(lines)
o = json.loads(lines[0])
for k in ("CPUPerc", "MemUsage", "MemLimit", "MemPerc", "HostMem", "BlockRead", "BlockWrite", "NetRx", "NetTx", "PIDs"):
    assert isinstance(o.get(k), (int, float)), "%s: %r" % (k, o.get(k))
assert 400 << 20 < o["MemLimit"] <= 512 << 20, "MemLimit %d" % o["MemLimit"]
assert 0 < o["MemUsage"] < o["MemLimit"], "MemUsage %d" % o["MemUsage"]
assert o["HostMem"] > 0 and o["PIDs"] == 1 and o["BlockRead"] > 0, o
EOF_PY

out=$("$COVE" exec c sh -c 'echo out; echo err >&2; exit 5' 2>"$T/err")
rc=$?
expect "exec: stdout, stderr and exit status 5" "5 out err" "$rc $out $(cat "$T/err")"

# same PID namespace: the main process is PID 1, and exec sees it
"$COVE" exec c ps >"$T/ps" 2>&1
if awk '$1 == 1' "$T/ps" | grep -q 'sleep 300$' && grep -q ' ps$' "$T/ps"; then ok "exec sees the main process as PID 1 (ps)"; else not_ok "exec sees the main process as PID 1 (ps)" "$(cat "$T/ps")"; fi
expect "exec: same hostname" exechost "$("$COVE" exec c hostname 2>&1)"
expect "exec: the container's env plus -e" "from-run 2" "$("$COVE" exec -e X=2 c sh -c 'echo $CV $X' 2>&1)"
expect "exec: -e overrides the container's env" over "$("$COVE" exec -e CV=over c sh -c 'echo $CV' 2>&1)"
expect "exec: default working directory is the container's" / "$("$COVE" exec c pwd 2>&1)"
expect "exec -w" /tmp "$("$COVE" exec -w /tmp c pwd 2>&1)"
expect "exec -u nobody" "65534 65534" "$("$COVE" exec -u nobody c sh -c 'echo $(id -u) $(id -g)' 2>&1)"

"$COVE" exec c no-such-cmd >/dev/null 2>"$T/err"
rc=$?
if [ $rc -eq 127 ] && grep -q no-such-cmd "$T/err"; then ok "exec of a missing command: 127, naming it"; else not_ok "exec of a missing command: 127, naming it" "rc=$rc" "$(cat "$T/err")"; fi
"$COVE" exec c /etc/passwd >/dev/null 2>"$T/err"
expect "exec of a non-executable file: 126" 126 $? "$(cat "$T/err")"

expect "exec -i passes stdin" abc "$(echo abc | "$COVE" exec -i c cat 2>&1)"
# (cat sees EOF at once: it neither prints our input nor waits for more)
out=$(echo abc | timeout 20 "$COVE" exec c cat 2>&1)
expect "exec without -i does not read our stdin" "0 ''" "$? '$out'"

# -d: returns at once; the command runs on
start=$(now)
"$COVE" exec -d c sh -c 'sleep 3; echo done >/from-d' >"$T/out" 2>&1
rc=$?
took=$(elapsed "$start")
early=$("$COVE" exec c cat /from-d 2>/dev/null)
if [ $rc -eq 0 ] && [ "$took" -le 2 ] && [ -z "$early" ]; then ok "exec -d returns at once (${took}s)"; else not_ok "exec -d returns at once" "rc=$rc took=${took}s file=$early" "$(cat "$T/out")"; fi
from_d() { [ "$("$COVE" exec c cat /from-d 2>/dev/null)" = done ]; }
if wait_until 15 from_d; then ok "exec -d: the command ran on"; else not_ok "exec -d: the command ran on"; fi

# -it through a real terminal
sock="$T/tmux.sock"
tmux -S "$sock" new-session -d -s t -x 80 -y 24 "COVE_ROOT=$COVE_ROOT $COVE exec -it c sh -c 'tty; stty size; echo tty-rc=\$?'; sleep 30"
tty_seen() { tmux -S "$sock" capture-pane -p -t t | grep -q 'tty-rc=0'; }
if wait_until 20 tty_seen && tmux -S "$sock" capture-pane -p -t t | grep -q '^/dev/pts/[0-9]' &&
	tmux -S "$sock" capture-pane -p -t t | grep -q '^24 80$'; then
	ok "exec -it: a terminal of the right size"
else
	not_ok "exec -it: a terminal of the right size" "$(tmux -S "$sock" capture-pane -p -t t)"
fi
tmux -S "$sock" kill-server 2>/dev/null

# a session that does not read a large stdin holds back only itself: another exec still runs
head -c 8M /dev/zero >"$T/zeros"
"$COVE" exec -i c sh -c 'sleep 20; cat >/dev/null; echo slow-done' <"$T/zeros" >"$T/slow" 2>&1 &
slow=$!
sleep 2
out=$(timeout 15 "$COVE" exec c echo alive 2>&1)
if [ "$out" = alive ] && alive $slow; then
	ok "an exec that leaves its stdin unread does not stall another"
else
	not_ok "an exec that leaves its stdin unread does not stall another" "got: $out" "slow one still running: $(alive $slow && echo yes || echo no)"
fi
wait $slow
expect "... and it gets all of its stdin in the end" "slow-done" "$(cat "$T/slow")"

# a stopped container: 125 and why
"$COVE" stop -t 0 c >/dev/null 2>&1
"$COVE" exec c true >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -eq 125 ] && grep -q "not running" "$T/err"; then ok "exec in a stopped container: 125, 'not running'"; else not_ok "exec in a stopped container: 125, 'not running'" "rc=$rc" "$(cat "$T/out" "$T/err")"; fi
"$COVE" rm c >/dev/null 2>&1

# ---- ten at once ----
pids=""
for i in $(seq 1 10); do
	"$COVE" run -d busybox sleep 300 >"$T/id.$i" 2>"$T/err.$i" &
	pids="$pids $!"
done
failed=""
i=0
for p in $pids; do
	i=$((i + 1))
	wait "$p" || failed="$failed #$i: $(cat "$T/err.$i")"
done
expect "ten run -d at once all succeed" "" "$failed"
ids=$(cat "$T"/id.* | grep -E '^[0-9a-f]{64}$' | sort -u | wc -l)
expect "ten distinct 64-hex IDs" 10 "$ids"
expect "ls -q lists ten" 10 "$("$COVE" ls -q 2>/dev/null | wc -l)"

# their supervisors and QEMUs, to check they are gone after rm -f
"$COVE" inspect $(cat "$T"/id.*) 2>/dev/null | python3 -c 'import json,sys; print("\n".join(str(c["State"]["Pid"]) for c in json.load(sys.stdin)))' >"$T/sups"
procs=""
for s in $(cat "$T/sups"); do [ "$s" -gt 0 ] && procs="$procs $s $(qemu_children "$s")"; done
expect "ten supervisors, each with a QEMU" 20 "$(echo $procs | wc -w)"

out=$("$COVE" rm -f $("$COVE" ls -aq) 2>&1)
expect "rm -f of all ten" "0 10" "$? $(echo "$out" | grep -c .)"
left=""
[ -n "$(ls -A "$COVE_ROOT/containers" 2>/dev/null)" ] && left="$left containers:$(ls "$COVE_ROOT/containers" | wc -l)"
[ -n "$(ls -A "$COVE_ROOT/names" 2>/dev/null)" ] && left="$left names:$(ls "$COVE_ROOT/names" | tr '\n' ' ')"
# (run/qemu-uid holds the pool of QEMU's uid slots, kept and reused)
[ -n "$(ls -A "$COVE_ROOT/run" 2>/dev/null | grep -vx qemu-uid)" ] && left="$left run:$(ls "$COVE_ROOT/run" | tr '\n' ' ')"
locks=$(find "$COVE_ROOT/containers" "$COVE_ROOT/run" -name '*lock*' 2>/dev/null)
[ -n "$locks" ] && left="$left locks:$locks"
for p in $procs; do wait_gone "$p" 10 || left="$left pid:$p($(cat /proc/$p/comm 2>/dev/null))"; done
expect "rm -f leaves no directory, name, socket, lock or process" "" "$left"
expect "ls -a is empty" "" "$("$COVE" ls -aq 2>&1)"
