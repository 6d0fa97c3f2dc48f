#!/bin/bash
# stdin, stdout and stderr: piped, separate, byte-exact.
. "$(dirname "$0")/lib.sh"

out=$(printf 'a\nb\n' | "$COVE" run -i --rm busybox wc -l 2>"$T/err")
expect "printf | run -i wc -l" 2 "$(echo $out)" "$(cat "$T/err")"

# without -i the container's stdin is empty
out=$(echo should-not-arrive | "$COVE" run --rm busybox cat 2>&1)
expect "without -i stdin is not forwarded" "" "$out"

"$COVE" run --rm busybox sh -c 'echo to-out; echo to-err >&2' >"$T/o" 2>"$T/e"
expect "stdout stays stdout" to-out "$(cat "$T/o")"
expect "stderr stays stderr" to-err "$(cat "$T/e")"

head -c 64M /dev/urandom >"$T/big"
"$COVE" run -i --rm busybox cat <"$T/big" >"$T/big.out" 2>"$T/err"
rc=$?
if [ $rc -eq 0 ] && cmp -s "$T/big" "$T/big.out"; then ok "64 MiB through cat is byte-identical"; else not_ok "64 MiB through cat is byte-identical" "rc=$rc size=$(stat -c %s "$T/big.out")" "$(cat "$T/err")"; fi
