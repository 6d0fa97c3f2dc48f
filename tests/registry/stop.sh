#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Stop what tests/registry/start.sh started in DIR: each process named by a DIR/*.pid file whose
# command line still mentions DIR (so a recycled pid is never signalled). TERM, then KILL after 2.5 s.
#
#   tests/registry/stop.sh DIR
set -u
[ $# -eq 1 ] || { echo "usage: stop.sh DIR" >&2; exit 2; }
[ -d "$1" ] || exit 0
DIR=$(cd "$1" && pwd)

# Running, and not a zombie waiting for whoever inherited it to reap it.
alive() {
	state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}
for pidfile in "$DIR/registry.pid" "$DIR/token.pid"; do
	[ -e "$pidfile" ] || continue
	pid=$(cat "$pidfile")
	case "$pid" in "" | *[!0-9]*) rm -f "$pidfile"; continue ;; esac
	if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$DIR"; then
		kill -TERM "$pid" 2>/dev/null
		i=0
		while alive "$pid" && [ $i -lt 50 ]; do sleep 0.05; i=$((i + 1)); done
		alive "$pid" && kill -KILL "$pid" 2>/dev/null
	fi
	rm -f "$pidfile"
done
exit 0
