#!/bin/bash
# Containers that live on: run -d, ls, exec, logs, stop, start, rm, and the verbs around them.
. "$(dirname "$0")/lib.sh"

# ---- the user story: a web server in the background ----
web_cmd='mkdir -p /www && echo hello-web >/www/index.html && echo web-starting && exec httpd -f -p 8080 -h /www'
id=$("$COVE" run -d --name web --stop-timeout 2 busybox sh -c "$web_cmd" 2>"$T/err")
rc=$?
if [ $rc -eq 0 ] && [[ $id =~ ^[0-9a-f]{64}$ ]]; then
	ok "run -d prints the full 64-hex ID"
else
	not_ok "run -d prints the full 64-hex ID" "rc=$rc" "stdout: $id" "$(cat "$T/err")"
fi

"$COVE" ls >"$T/ls" 2>&1
line=$(awk '$NF == "web"' "$T/ls")
if head -1 "$T/ls" | grep -q '^CONTAINER ID  *IMAGE  *COMMAND  *CREATED  *STATUS  *PORTS  *NAMES$' &&
	[ "$(echo "$line" | awk '{print $1}')" = "${id:0:12}" ] && echo "$line" | grep -q ' Up '; then
	ok "ls shows web running (short ID, Up, name)"
else
	not_ok "ls shows web running (short ID, Up, name)" "$(cat "$T/ls")"
fi

# httpd needs a moment after the container runs to listen
get_index() { out=$("$COVE" exec web wget -qO- 127.0.0.1:8080/ 2>&1); [ "$out" = hello-web ]; }
if wait_until 5 get_index; then ok "exec wget reaches httpd in the container"; else not_ok "exec wget reaches httpd in the container" "$out"; fi

if "$COVE" logs web 2>&1 | grep -qx web-starting; then ok "logs show what the container printed"; else not_ok "logs show what the container printed" "$("$COVE" logs web 2>&1)"; fi

# the writable layer: a file written with exec before stop is there after start
"$COVE" exec web sh -c 'echo kept-data >/www/kept'
pid=$(ctr_pid web)
start=$(now)
out=$("$COVE" stop web 2>&1)
rc=$?
took=$(elapsed "$start")
# --stop-timeout 2: httpd as PID 1 ignores SIGTERM, so SIGKILL after 2 s, then the VM's shutdown
if [ $rc -eq 0 ] && [ "$out" = web ] && [ "$took" -le 8 ]; then ok "stop web ends it within its --stop-timeout (${took}s)"; else not_ok "stop web ends it within its --stop-timeout" "rc=$rc took=${took}s" "$out"; fi
"$COVE" ls -a >"$T/ls" 2>&1
if awk '$NF == "web"' "$T/ls" | grep -q ' Exited ('; then ok "ls -a shows web Exited"; else not_ok "ls -a shows web Exited" "$(cat "$T/ls")"; fi
if "$COVE" ls | awk '$NF == "web"' | grep -q .; then not_ok "ls (without -a) no longer lists web" "$("$COVE" ls 2>&1)"; else ok "ls (without -a) no longer lists web"; fi
expect "inspect after stop: Running false, Pid 0" "false 0" "$(inspect_field web State.Running) $(ctr_pid web)"
if [ -n "$pid" ] && [ "$pid" -gt 0 ] && wait_gone "$pid" 5; then ok "the supervisor is gone after stop"; else not_ok "the supervisor is gone after stop" "pid=$pid"; fi

out=$("$COVE" start web 2>&1)
rc=$?
expect "start web prints web" "0 web" "$rc $out"
expect "a file written before stop is there after start" kept-data "$("$COVE" exec web cat /www/kept 2>&1)"
if wait_until 5 get_index; then ok "httpd serves again after start"; else not_ok "httpd serves again after start" "$out"; fi

# rm -f removes every trace
pid=$(ctr_pid web)
qemu=$(qemu_children "$pid")
out=$("$COVE" rm -f web 2>&1)
expect "rm -f web" "0 web" "$? $out"
left=""
[ -e "$COVE_ROOT/containers/$id" ] && left="$left container-dir"
[ -e "$COVE_ROOT/names/web" ] || [ -L "$COVE_ROOT/names/web" ] && left="$left name"
ls "$COVE_ROOT/run" 2>/dev/null | grep -q "^${id:0:12}" && left="$left socket"
[ -n "$pid" ] && [ "$pid" -gt 0 ] && ! wait_gone "$pid" 5 && left="$left supervisor($pid)"
[ -z "$qemu" ] && left="$left no-qemu-found-before-rm"
for q in $qemu; do wait_gone "$q" 5 || left="$left qemu($q)"; done
"$COVE" inspect web >/dev/null 2>&1 && left="$left inspect-still-finds-it"
expect "rm -f leaves nothing behind (dir, name, socket, supervisor, QEMU)" "" "$left"

# ---- stop escalates to SIGKILL; ls, inspect and wait agree on 137 ----
"$COVE" run -d --name stubborn busybox sh -c 'trap "" TERM; while :; do sleep 1; done' >/dev/null 2>"$T/err" ||
	not_ok "run -d stubborn" "$(cat "$T/err")"
start=$(now)
out=$("$COVE" stop -t 1 stubborn 2>&1)
rc=$?
took=$(elapsed "$start")
if [ $rc -eq 0 ] && [ "$took" -lt 10 ]; then ok "stop -t 1 kills a TERM-ignoring process (${took}s)"; else not_ok "stop -t 1 kills a TERM-ignoring process" "rc=$rc took=${took}s" "$out"; fi
ls_code=$("$COVE" ls -a --format json --filter name=stubborn 2>&1 | python3 -c 'import json,sys; print(" ".join("%s %s" % (o["State"], o["ExitCode"]) for o in map(json.loads, sys.stdin)))')
expect "ls --format json: exited 137" "exited 137" "$ls_code"
expect "inspect: exited 137" "exited 137" "$(inspect_field stubborn State.Status) $(inspect_field stubborn State.ExitCode)"
expect "wait prints 137" 137 "$("$COVE" wait stubborn 2>&1)"

# ---- a process that exits by itself ----
"$COVE" run -d --name three -l tier=back busybox sh -c 'exit 3' >/dev/null 2>"$T/err" || not_ok "run -d three" "$(cat "$T/err")"
out=$("$COVE" wait three 2>&1)
expect "wait prints the exit code 3" "0 3" "$? $out"
expect "inspect: exited 3" "exited 3" "$(inspect_field three State.Status) $(inspect_field three State.ExitCode)"

# ---- kill -s: a signal reaches the main process's trap; kill's default is SIGKILL ----
"$COVE" run -d --name trapper busybox sh -c 'trap "echo got-usr1" USR1; echo ready; while :; do sleep 0.2; done' >/dev/null 2>"$T/err" ||
	not_ok "run -d trapper" "$(cat "$T/err")"
logs_have() { "$COVE" logs trapper 2>/dev/null | grep -qx "$1"; }
wait_until 10 logs_have ready
out=$("$COVE" kill -s USR1 trapper 2>&1)
expect "kill -s USR1 prints the container" "0 trapper" "$? $out"
if wait_until 5 logs_have got-usr1; then ok "USR1 runs the process's trap (logs)"; else not_ok "USR1 runs the process's trap (logs)" "$("$COVE" logs trapper 2>&1)"; fi

# rm without -f refuses a running container and leaves it running
"$COVE" rm trapper >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -ne 0 ] && grep -q running "$T/err" && [ "$(inspect_field trapper State.Running)" = true ]; then
	ok "rm of a running container fails, says why, leaves it running"
else
	not_ok "rm of a running container fails, says why, leaves it running" "rc=$rc" "$(cat "$T/out" "$T/err")" "running: $(inspect_field trapper State.Running)"
fi

# ---- create, start, restart, --cidfile, labels ----
cid=$("$COVE" create --name cr --cidfile "$T/cid" -l tier=front -l team busybox sh -c 'echo hi-from-cr; while :; do sleep 1; done' 2>"$T/err")
rc=$?
if [ $rc -eq 0 ] && [[ $cid =~ ^[0-9a-f]{64}$ ]]; then ok "create prints the ID"; else not_ok "create prints the ID" "rc=$rc $cid" "$(cat "$T/err")"; fi
expect "--cidfile holds the ID" "$cid" "$(cat "$T/cid" 2>&1)"
if "$COVE" ls -a | awk '$NF == "cr"' | grep -q ' Created '; then ok "ls -a shows a created container as Created"; else not_ok "ls -a shows a created container as Created" "$("$COVE" ls -a 2>&1)"; fi
expect "inspect: created" created "$(inspect_field cr State.Status)"
out=$("$COVE" start cr 2>&1)
expect "start cr prints cr" "0 cr" "$? $out"
expect "inspect after start: running" "running true" "$(inspect_field cr State.Status) $(inspect_field cr State.Running)"
pid1=$(ctr_pid cr)
out=$("$COVE" restart -t 1 cr 2>&1)
expect "restart -t 1 cr prints cr" "0 cr" "$? $out"
pid2=$(ctr_pid cr)
if [ "$(inspect_field cr State.Running)" = true ] && [ -n "$pid2" ] && [ "$pid2" != 0 ] && [ "$pid2" != "$pid1" ] && ! alive "$pid1"; then
	ok "restart: a new supervisor runs, the old one is gone"
else
	not_ok "restart: a new supervisor runs, the old one is gone" "pid before $pid1, after $pid2, running $(inspect_field cr State.Running)"
fi
cr_logged() { [ "$("$COVE" logs cr 2>/dev/null | grep -cx hi-from-cr)" = 2 ]; }
if wait_until 5 cr_logged; then ok "logs keep both runs' output after restart"; else not_ok "logs keep both runs' output after restart" "$("$COVE" logs cr 2>&1)"; fi

# a name is one container's
n_before=$("$COVE" ls -aq 2>/dev/null | wc -l)
"$COVE" run -d --name cr busybox true >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -ne 0 ] && [ ! -s "$T/out" ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "'cr'" "$T/err"; then
	ok "a name in use: one-line error naming it, non-zero"
else
	not_ok "a name in use: one-line error naming it, non-zero" "rc=$rc" "$(cat "$T/out" "$T/err")"
fi
expect "a name in use creates no container" "$n_before" "$("$COVE" ls -aq 2>/dev/null | wc -l)"
"$COVE" run -d --cidfile "$T/cid" busybox true >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -ne 0 ] && grep -q "cidfile '$T/cid' already exists" "$T/err" && [ "$(cat "$T/cid")" = "$cid" ]; then
	ok "an existing --cidfile is refused and left alone"
else
	not_ok "an existing --cidfile is refused and left alone" "rc=$rc" "$(cat "$T/out" "$T/err")"
fi
expect "a refused --cidfile creates no container" "$n_before" "$("$COVE" ls -aq 2>/dev/null | wc -l)"
# (one that was left anyway would only upset the counts below)
"$COVE" ls -aq --filter status=created 2>/dev/null | xargs -r "$COVE" rm >/dev/null 2>&1

# an unknown container is a clear error from every verb
for verb in inspect logs stop start rm wait; do
	"$COVE" $verb no-such-ctr >"$T/out" 2>"$T/err"
	rc=$?
	if [ $rc -ne 0 ] && grep -Eq "no such container( or image)?: 'no-such-ctr'" "$T/err"; then ok "$verb of an unknown container fails and says so"; else not_ok "$verb of an unknown container fails and says so" "rc=$rc" "$(cat "$T/out" "$T/err")"; fi
done
"$COVE" exec no-such-ctr true >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -eq 125 ] && grep -q "no-such-ctr" "$T/err"; then ok "exec in an unknown container: 125 and a message"; else not_ok "exec in an unknown container: 125 and a message" "rc=$rc" "$(cat "$T/err")"; fi

# a unique ID prefix works like the name
expect "a unique ID prefix names the container" cr "$(inspect_field "${cid:0:7}" Name)"
expect "logs by ID prefix" hi-from-cr "$("$COVE" logs "${cid:0:7}" 2>&1 | head -1)"

# ---- ls: filters, formats ----
three_id=$(inspect_field three Id)
stubborn_id=$(inspect_field stubborn Id)
trapper_id=$(inspect_field trapper Id)
sorted() { tr ' ' '\n' | grep . | sort | tr '\n' ' '; }
expect "ls --filter name=cr" "${cid:0:12}" "$("$COVE" ls -a -q --filter name=cr 2>&1)"
expect "ls --filter label=tier=front" "${cid:0:12}" "$("$COVE" ls -a -q --filter label=tier=front 2>&1)"
expect "ls --filter label=tier (any value)" "$(echo "${cid:0:12} ${three_id:0:12}" | sorted)" "$("$COVE" ls -a -q --filter label=tier 2>&1 | sorted)"
expect "ls --filter status=exited" "$(echo "${three_id:0:12} ${stubborn_id:0:12}" | sorted)" "$("$COVE" ls -a -q --filter status=exited 2>&1 | sorted)"
expect "ls --filter exited=3" "${three_id:0:12}" "$("$COVE" ls -a -q --filter exited=3 2>&1)"
expect "ps -q lists the running ones" "$(echo "${cid:0:12} ${trapper_id:0:12}" | sorted)" "$("$COVE" ps -q 2>&1 | sorted)"
expect "ls -q --no-trunc gives full IDs" "$(echo "$cid $trapper_id" | sorted)" "$("$COVE" ls -q --no-trunc 2>&1 | sorted)"

"$COVE" ls -a --format json >"$T/json" 2>&1
if python3 - "$T/json" "$cid" "$("$COVE" ls -aq | wc -l)" <<'EOF_PY' >"$T/why" 2>&1; then ok "ls -a --format json: one object a line, with the fields"; else not_ok "ls -a --format json: one object a line, with the fields" "$(cat "$T/why" "$T/json")"; fi
import json, sys
lines = open(sys.argv[1]).read().splitlines()
objs = [json.loads(l) for l in lines]
assert len(objs) == int(sys.argv[3]) == 4, "%d objects, %s containers" % (len(objs), sys.argv[3])
keys = {"ID", "Names", "Image", "Command", "CreatedAt", "State", "Status", "ExitCode", "Labels"}
for o in objs:
    assert keys <= set(o), "missing %s" % (keys - set(o))
cr = [o for o in objs if o["ID"] == sys.argv[2]]
assert len(cr) == 1, "cr not found by its full ID"
cr = cr[0]
assert cr["Names"] == "cr" and cr["Image"] == "busybox" and cr["State"] == "running", cr
assert cr["Status"].startswith("Up "), cr["Status"]
assert cr["Labels"] == {"tier": "front", "team": ""}, cr["Labels"]
assert cr["Command"].startswith("sh -c echo hi-from-cr"), cr["Command"]
EOF_PY
expect "inspect .Config.Labels" '{"team": "", "tier": "front"}' "$("$COVE" inspect cr 2>&1 | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)[0]["Config"]["Labels"], sort_keys=True))' 2>&1)"

# ---- kill (SIGKILL by default), then rm of stopped containers needs no -f ----
out=$("$COVE" kill trapper 2>&1)
expect "kill trapper" "0 trapper" "$? $out"
expect "wait after kill prints 137" 137 "$("$COVE" wait trapper 2>&1)"
out=$("$COVE" rm trapper three 2>&1)
expect "rm of stopped containers" "0 trapper three" "$? $(echo $out)"
expect "what is left: cr and stubborn" "$(echo "cr stubborn" | sorted)" "$("$COVE" ls -a --format json 2>/dev/null | python3 -c 'import json,sys; print(" ".join(json.loads(l)["Names"] for l in sys.stdin))' | sorted)"
