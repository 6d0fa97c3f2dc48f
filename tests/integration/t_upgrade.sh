#!/bin/bash
# A container made by the cove before config.json became an OCI runtime spec (its own keys at
# the top level) still starts, shows in ls and inspect, stops and is removed; a config.json that
# is not JSON fails in one line that says how to get rid of the container.
. "$(dirname "$0")/lib.sh"

id=$("$COVE" create --name old -e GREETING=hi busybox sh -c 'echo $GREETING from old; id -u' 2>"$T/err")
dir="$COVE_ROOT/containers/$id"
# the previous layout, as `cove create` wrote it
python3 - "$dir/config.json" <<'PY'
import json, sys
p = sys.argv[1]
oci = json.load(open(p))
a = oci["annotations"]
old = {
    "id": a["io.cove.id"], "name": a["io.cove.name"], "created": a["io.cove.created"],
    "image": a["io.cove.image"], "image_id": "", "snapshot": a["io.cove.snapshot"], "rootfs": "",
    "process": {"args": oci["process"]["args"], "env": oci["process"]["env"], "cwd": "/",
                "user": "1000", "terminal": False, "open_stdin": False},
    "cpus": 1, "memory": 268435456, "autoremove": False, "hostname": "oldbox",
    "labels": {"era": "before"}, "entrypoint": [], "cmd": oci["process"]["args"],
    "stop_signal": 15, "stop_timeout": 10, "readonly": False, "init": False,
    "unconfined": False, "caps": 0, "cap_add": [], "cap_drop": [], "rlimits": [], "tmpfs": [],
}
json.dump(old, open(p, "w"))
PY
expect "an old-layout container starts" "hi from old
1000" "$("$COVE" start -a old 2>&1)"
expect "ls shows it" "old" "$("$COVE" ls -a --filter label=era=before --format json | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["Names"])')"
expect "inspect reads it" "oldbox 268435456" "$(inspect_field old Config.Hostname) $(inspect_field old HostConfig.Memory)"
"$COVE" rm old >/dev/null 2>&1
expect "rm removes it" "" "$("$COVE" ls -aq)"

id=$("$COVE" create --name broken busybox true)
echo 'not json' >"$COVE_ROOT/containers/$id/config.json"
"$COVE" start broken >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -ne 0 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "cannot read its config.json.*remove it with 'cove rm" "$T/err"; then
	ok "a damaged config.json: one line that says what to do"
else
	not_ok "a damaged config.json: one line that says what to do" "rc=$rc" "$(cat "$T/err")"
fi
"$COVE" rm broken >/dev/null 2>&1
expect "and rm still removes it" "" "$("$COVE" ls -aq)"
