# Shared helpers for integration tests. Each test file sources this, then calls
# `check NAME CONDITION-COMMAND...` or ok/not_ok directly. Tests run real VMs via $COVE.
set -u
COVE=${COVE:-$(cd "$(dirname "$0")/../.." && pwd)/build/cove}
T=$(mktemp -d "${COVE_TEST_TMP:-/tmp}/it.XXXXXX")
# every test file gets its own state directory, so files can run in parallel
export COVE_ROOT="$T/state"
trap 'rm -rf "$T"' EXIT

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
# qemu processes whose parent is PID
qemu_children() {
	for c in /proc/[0-9]*; do
		[ -r "$c/stat" ] || continue
		read -r pid comm state ppid rest <"$c/stat" 2>/dev/null || continue
		[ "$ppid" = "$1" ] && case "$comm" in *qemu*) echo "$pid" ;; esac
	done
}
