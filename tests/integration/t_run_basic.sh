#!/bin/bash
# The first thing a user runs: output, the guest's own kernel, the exit status.
. "$(dirname "$0")/lib.sh"

out=$("$COVE" run --rm busybox sh -c 'echo hello; uname -r; exit 7' 2>"$T/err")
rc=$?
expect "exit status 7 comes back" 7 "$rc" "$(cat "$T/err")"
expect "stdout first line" hello "$(echo "$out" | sed -n 1p)"
guest_rel=$(echo "$out" | sed -n 2p)
want_rel=$(cat "$(dirname "$COVE")/kernel/vmlinux.release")
expect "uname -r is the guest kernel" "$want_rel" "$guest_rel"
if [ "$guest_rel" != "$(uname -r)" ]; then ok "guest kernel differs from the host's"; else not_ok "guest kernel differs from the host's"; fi

# exit codes as docker reports them
"$COVE" run --rm busybox false 2>/dev/null; expect "false exits 1" 1 $?
"$COVE" run --rm busybox no-such-command 2>"$T/err"; rc=$?
expect "missing command exits 127" 127 "$rc"
if grep -q "no-such-command" "$T/err" && [ "$(wc -l <"$T/err")" -eq 1 ]; then ok "missing command: one-line error naming it"; else not_ok "missing command: one-line error naming it" "$(cat "$T/err")"; fi
"$COVE" run --rm busybox /etc/passwd 2>"$T/err"; expect "non-executable file exits 126" 126 $? "$(cat "$T/err")"

# --rm leaves nothing behind
n=$(ls "$COVE_ROOT/containers" 2>/dev/null | wc -l)
expect "--rm leaves no container directory" 0 "$n"
