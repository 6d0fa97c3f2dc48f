#!/bin/bash
# Run the whole test suite on a fresh Debian 12 machine: set up (packages, build, guest kernel),
# unit tests, the same unit tests and the fuzz corpus replay under ASan+UBSan, then the
# integration tests, which boot real VMs. Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
top=$(pwd)

./scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

results=$(mktemp -d /tmp/cove-test.XXXXXX)
trap 'rm -rf "$results"' EXIT

# Sanitizer build: host code only (the guest is static musl), unit tests and fuzz replay.
if [ ! -f build-asan/build.ninja ]; then
	meson setup build-asan -Dguest=false -Db_sanitize=address,undefined \
		-Db_lundef=false --buildtype=debug >/dev/null || exit 1
fi
ninja -C build-asan >/dev/null || { echo "sanitizer build failed"; echo "0 passed, 1 failed"; exit 1; }

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

run_unit() { # DIR LABEL
	for t in "$top/$1"/tests/unit/test_*; do
		[ -f "$t" ] && [ -x "$t" ] || continue
		name=$(basename "$t")
		(cd "$results" && "$t" "$top" >"$results/$2-$name.out" 2>&1; echo $? >"$results/$2-$name.rc")
		# a crash with no "not ok" line still fails
		if [ "$(cat "$results/$2-$name.rc")" != 0 ] && ! grep -q '^not ok' "$results/$2-$name.out"; then
			echo "not ok - $name crashed (exit $(cat "$results/$2-$name.rc"))" >>"$results/$2-$name.out"
		fi
		sed "s/^\(not ok\|ok\) - /\1 - $2 /" "$results/$2-$name.out" | grep -E '^(not )?ok - '
	done
}

run_fuzz() { # DIR LABEL
	for f in "$top/$1"/fuzz/fuzz_*; do
		[ -f "$f" ] && [ -x "$f" ] || continue
		name=${f##*/fuzz_}
		if out=$("$f" "$top/fuzz/corpus/$name" 2>&1); then
			echo "ok - $2 fuzz replay $name"
		else
			echo "not ok - $2 fuzz replay $name"
			echo "$out" | tail -20 | sed 's/^/    /'
		fi
	done
}

{
	run_unit build unit
	run_unit build-asan asan
	run_fuzz build-asan asan
	# and each target under libFuzzer for a fixed budget, from its corpus
	./scripts/fuzz.sh --time "${COVE_FUZZ_SECONDS:-10}" ||
		echo "# (a fuzz target failed: its input is under /var/cache/cove/fuzz/crashes)"
} | tee "$results/unit.log"

# The OCI test images (a debootstrap the first time, which needs Debian's mirror), made here:
# the integration tests run in network namespaces of their own, with no way out.
if ! imgs=$(tests/images/build.sh 2>&1); then
	echo "not ok - test images build" | tee -a "$results/unit.log"
	echo "$imgs" | tail -20 | sed 's/^/    /'
fi

# Integration tests: each file prints ok/not ok lines; run a few at once (each VM takes one
# core under TCG).
export COVE="$top/build/cove"
export COVE_TEST_TMP="$results"
# The templates most containers start from (on a network, and --network none), made once for
# every test file, as a user's first start makes them: the suite runs restored VMs; t_cold runs
# its core again with templates off, and t_template tests them on their own.
export COVE_TEMPLATES="$results/templates"
if ! out=$(COVE_ROOT="$results/prepare" "$COVE" system prepare 2>&1); then
	echo "not ok - templates prepared" | tee -a "$results/unit.log"
	echo "$out" | tail -20 | sed 's/^/    /' | tee -a "$results/unit.log"
fi
ls tests/integration/t_*.sh | xargs -P "${COVE_TEST_JOBS:-3}" -I{} sh -c \
	'bash {} >"$COVE_TEST_TMP/$(basename {}).log" 2>&1; echo "exit $?" >>"$COVE_TEST_TMP/$(basename {}).log"'
for f in tests/integration/t_*.sh; do
	log="$results/$(basename "$f").log"
	grep -E '^(not )?ok - |^    ' "$log"
	if ! grep -qE '^(not )?ok - ' "$log"; then
		echo "not ok - $(basename "$f") printed no result"
		tail -20 "$log" | sed 's/^/    /'
	fi
done | tee "$results/integration.log"

passed=$(cat "$results/unit.log" "$results/integration.log" | grep -c '^ok - ')
failed=$(cat "$results/unit.log" "$results/integration.log" | grep -c '^not ok - ')
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
