#!/bin/bash
# Following a container: attach, start -a, logs -f/-n/-t, --env-file, prune.
. "$(dirname "$0")/lib.sh"

script='for i in 1 2 3; do echo line$i; sleep 0.5; done; echo err-line >&2; exit 4'
"$COVE" run -d --name a busybox sh -c "$script" >/dev/null 2>"$T/err" || not_ok "run -d a" "$(cat "$T/err")"
"$COVE" attach a >"$T/out" 2>"$T/aerr"
rc=$?
# attach may join after the first lines; it must see the end and the exit status
expect "attach: exit status and the last line" "4 line3" "$rc $(tail -1 "$T/out")" "$(cat "$T/aerr")"
expect "attach: stderr stays stderr" "err-line" "$(cat "$T/aerr")"
expect "after attach returns the state is final" "exited 4" \
	"$(inspect_field a State.Status) $(inspect_field a State.ExitCode)"

out=$("$COVE" start -a a 2>"$T/err")
expect "start -a runs it again and returns its status" "4 line1 line2 line3" "$? $(echo $out)" "$(cat "$T/err")"

expect "logs has both runs' stdout" "6" "$("$COVE" logs a 2>/dev/null | grep -c '^line')"
expect "logs -n 2" "line3 err-line" "$(echo $("$COVE" logs -n 2 a 2>&1))"
if "$COVE" logs -t -n 1 a 2>&1 | grep -Eq '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z err-line$'; then
	ok "logs -t prefixes an RFC 3339 time"
else
	not_ok "logs -t prefixes an RFC 3339 time" "$("$COVE" logs -t -n 1 a 2>&1)"
fi

# logs -f follows a running container to its end, then returns
"$COVE" run -d --name f busybox sh -c 'i=0; while [ $i -lt 4 ]; do echo f$i; i=$((i+1)); sleep 0.5; done' >/dev/null
s=$(now)
timeout 30 "$COVE" logs -f f >"$T/f" 2>&1
rc=$?
expect "logs -f follows to the end and exits 0" "0 f0 f1 f2 f3" "$rc $(echo $(cat "$T/f"))"

printf 'X=1\n# a comment\n\nY=two words\nHOME\n' >"$T/env"
out=$(HOME=/from-host "$COVE" run --rm --env-file "$T/env" busybox sh -c 'echo "$X|$Y|$HOME"' 2>&1)
expect "--env-file: values, comments, blank lines, KEY alone" "1|two words|/from-host" "$out"
printf 'BAD KEY=1\n' >"$T/badenv"
out=$("$COVE" run --rm --env-file "$T/badenv" busybox true 2>&1)
rc=$?
if [ $rc -eq 125 ] && [ "$(echo "$out" | wc -l)" -eq 1 ] && echo "$out" | grep -q 'line 1'; then
	ok "a bad --env-file line: one error naming the line, 125"
else
	not_ok "a bad --env-file line: one error naming the line, 125" "rc=$rc" "$out"
fi

# prune removes what is not running, and only that
"$COVE" run -d --name keep busybox sleep 300 >/dev/null
"$COVE" prune >"$T/pruned" 2>&1
left=$("$COVE" ls -a --format json | python3 -c 'import json,sys; print(" ".join(sorted(json.loads(l)["Names"] for l in sys.stdin)))')
expect "prune keeps the running one, removes the others" "keep" "$left" "$(cat "$T/pruned")"
"$COVE" rm -f keep >/dev/null

# inspect falls back to images, as docker's does; a name that is neither says so
if "$COVE" inspect busybox 2>&1 | grep -q '"Digest": "sha256:'; then ok "inspect IMAGE shows the image"; else not_ok "inspect IMAGE shows the image" "$("$COVE" inspect busybox 2>&1 | head -5)"; fi
out=$("$COVE" inspect no-such-thing 2>&1)
expect "inspect of neither: one line, non-zero" "1 cove: no such container or image: 'no-such-thing'" "$? $out"

# the log is rotated: at most max-file files of about max-size; logs reads them in order
# (16000 lines: over 150 KB whatever the output's chunking, so that there are 3 files)
"$COVE" run --name rot --log-opt max-size=64k --log-opt max-file=3 busybox \
	sh -c 'i=0; while [ $i -lt 16000 ]; do echo "line $i"; i=$((i+1)); done' >/dev/null 2>&1
dir=$(dirname "$(inspect_field rot LogPath)")
sizes=$(ls -l "$dir"/container.log* 2>/dev/null | awk '{ if ($5 > 65536) big++ } END { print NR, big + 0 }')
expect "a rotated log: 3 files, none over max-size" "3 0" "$sizes"
expect "logs reads the rotated files in order, ending at the last line" "0 line 15999" \
	"$("$COVE" logs rot | awk '{ n = $2 + 0; if (NR > 1 && n != prev + 1) bad++; prev = n } END { print bad + 0 }') $("$COVE" logs rot | tail -1)"
expect "logs -n across the files" "line 15998 line 15999" "$("$COVE" logs -n 2 rot | tr '\n' ' ' | sed 's/ $//')"
expect "inspect shows the rotation" "65536 3" "$(inspect_field rot HostConfig.LogConfig.max-size) $(inspect_field rot HostConfig.LogConfig.max-file)"
"$COVE" run --rm --log-opt max-size=1 busybox true >/dev/null 2>"$T/err"
expect "a bad --log-opt: one line, 125" "125 1" "$? $(wc -l <"$T/err")"
