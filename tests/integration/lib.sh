# Shared helpers for integration tests. Each test file sources this, then calls
# `check NAME CONDITION-COMMAND...` or ok/not_ok directly. Tests run real VMs via $COVE.
set -u
# Every test file runs in a network namespace of its own: containers get a bridge, taps, NAT
# and forwarding there, never on the host's own interfaces, routes, firewall or sysctls.
if [ -z "${COVE_IN_NETNS:-}" ] && [ "$(id -u)" = 0 ]; then
	exec unshare -n env COVE_IN_NETNS=1 bash "$0" "$@"
fi
[ -n "${COVE_IN_NETNS:-}" ] && ip link set lo up
COVE=${COVE:-$(cd "$(dirname "$0")/../.." && pwd)/build/cove}
T=$(mktemp -d "${COVE_TEST_TMP:-/tmp}/it.XXXXXX")
# every test file gets its own state directory, so files can run in parallel
export COVE_ROOT="$T/state"
# the accelerator verdict first (a probe boot where /dev/kvm opens), so that no test's first
# container carries a notice about it on a host whose KVM is broken
"$COVE" system info >/dev/null 2>&1
# the system python when there is one: a version manager's shim can take a second to start
# ($PYTHON for what runs in the background: $! of a function is its subshell's, not python's)
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=$(command -v python3)
python3() { "$PYTHON" "$@"; }

# containers outlive the commands that started them: on exit, remove what this file left
# (and SIGKILL any supervisor that survives that; its QEMU dies with it), then the temp dir
cleanup() {
	# whatever the file left running in the background (servers, namespaces' sleepers)
	kill $(jobs -p) 2>/dev/null
	if [ -d "$COVE_ROOT/containers" ]; then
		"$COVE" rm -f --all >/dev/null 2>&1
		for s in "$COVE_ROOT"/containers/*/state.json; do
			[ -f "$s" ] || continue
			pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("pid") or 0)' "$s" 2>/dev/null)
			[ "${pid:-0}" -gt 0 ] && [ "$(cat /proc/$pid/comm 2>/dev/null)" = cove-supervisor ] && kill -9 "$pid"
		done
	fi
	rm -rf "$T"
}
trap cleanup EXIT

# registry_with_images: a registry of this file's own on 127.0.0.1 with the OCI test images
# pushed (tests/images), stopped on exit; sets R (its host:port) and OCI (the image layout).
# When it cannot, the file ends after one not ok.
registry_with_images() {
	local top
	top=$(cd "$(dirname "$0")/../.." && pwd)
	OCI=$("$top/tests/images/build.sh") || { not_ok "test images build" "$OCI"; exit 0; }
	"$top/tests/registry/start.sh" plain "$T/reg" >"$T/reg.log" 2>&1 ||
		{ not_ok "registry starts" "$(cat "$T/reg.log")"; exit 0; }
	# shellcheck disable=SC2064 # top and T are fixed now
	trap "'$top/tests/registry/stop.sh' '$T/reg' >/dev/null 2>&1; cleanup" EXIT
	. "$T/reg/env"
	R=$REGISTRY
	"$top/tests/images/push.sh" "$OCI" "$R" >"$T/push.log" 2>&1 ||
		{ not_ok "test images pushed" "$(cat "$T/push.log")"; exit 0; }
}

ok() { echo "ok - $(basename "$0" .sh): $1"; }
not_ok() {
	echo "not ok - $(basename "$0" .sh): $1"
	shift
	for l in "$@"; do printf '%s\n' "$l" | sed 's/^/    /' | head -20; done
}
# expect NAME EXPECTED ACTUAL [extra context]
expect() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "expected: $2" "got:      $3" "${4:-}"; fi
}
# one_line_125 NAME PATTERN CMD...: CMD fails with 125 and one line on stderr matching PATTERN
one_line_125() {
	local name=$1 pat=$2
	shift 2
	"$@" >"$T/out" 2>"$T/err"
	local rc=$?
	if [ $rc -eq 125 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q -e "$pat" "$T/err"; then
		ok "$name"
	else
		not_ok "$name" "rc=$rc (want 125)" "stderr: $(cat "$T/err")"
	fi
}
# qemu processes whose parent is PID
qemu_children() {
	for c in /proc/[0-9]*; do
		[ -r "$c/stat" ] || continue
		read -r pid comm state ppid rest <"$c/stat" 2>/dev/null || continue
		[ "$ppid" = "$1" ] && case "$comm" in *qemu*) echo "$pid" ;; esac
	done
}
# A field of `cove inspect CTR`, by dotted path: inspect_field web State.Status
# (booleans print as true/false; nothing, and status 1, if CTR or the field is not there)
inspect_field() {
	"$COVE" inspect "$1" 2>/dev/null | python3 -c '
import json, sys
v = json.load(sys.stdin)[0]
for k in sys.argv[1].split("."):
    v = v[k]
print(str(v).lower() if isinstance(v, bool) else v)' "$2" 2>/dev/null
}
# the supervisor's host pid (the container's pid), 0 if it is not running
ctr_pid() { inspect_field "$1" State.Pid; }
# true while PID is a live process (a zombie is not)
alive() {
	local s
	s=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null)
	[ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ]
}
# wait_gone PID [SECS]: poll until PID is no longer alive; status 1 if it still is after SECS
wait_gone() {
	for _ in $(seq 1 $(( ${2:-10} * 20 ))); do alive "$1" || return 0; sleep 0.05; done
	return 1
}
# wait_until SECS COMMAND...: poll COMMAND until it succeeds; status 1 if it never did
wait_until() {
	local n=$(( $1 * 20 ))
	shift
	for _ in $(seq 1 $n); do "$@" && return 0; sleep 0.05; done
	return 1
}
# upstream: a network namespace a veth away standing for the world outside (192.0.2.2; this
# side 192.0.2.1), for NAT and published ports; sets up (its process; kill it when done)
upstream() {
	unshare -n sleep 600 &
	up=$!
	# (until unshare has made its namespace, the veth's far end would land in ours)
	wait_until 10 sh -c "[ \"\$(readlink /proc/$up/ns/net)\" != \"\$(readlink /proc/self/ns/net)\" ]"
	ip link add vdown type veth peer name vup netns "$up"
	ip addr add 192.0.2.1/24 dev vdown && ip link set vdown up
	nsenter -t "$up" -n sh -c 'ip link set lo up; ip addr add 192.0.2.2/24 dev vup; ip link set vup up'
}
# seconds since the epoch, with fractions (for timing a command)
now() { date +%s.%N; }
# elapsed START: seconds since START as a whole number, rounded up
elapsed() { python3 -c 'import math,sys,time; print(math.ceil(time.time() - float(sys.argv[1])))' "$1"; }
