#!/bin/bash
# Drive the fuzz targets with libFuzzer under ASan+UBSan, and report executions and coverage
# per target.
#
#   scripts/fuzz.sh [--time SECONDS | --runs N] [--max-len BYTES] [--save] [TARGET...]
#
# Builds build-fuzz (clang, -Dfuzzing=true; $COVE_FUZZ_BUILD names another) when needed. Each target starts from its saved
# corpus (fuzz/corpus/TARGET) plus the inputs it found before, kept in $COVE_FUZZ_DIR/TARGET
# (default /var/cache/cove/fuzz), and runs for SECONDS (default 10) or N executions. --save
# merges what found new coverage into fuzz/corpus/TARGET (minimised by libFuzzer's -merge).
# A crash leaves its input in $COVE_FUZZ_DIR/crashes/ and fails the run. Prints one line per
# target:
#
#   ok - fuzz proto: 10000000 execs in 212 s, cov 1412, ft 5210, corpus 612
set -u
cd "$(dirname "$0")/.."
top=$(pwd)

budget=(-max_total_time=10)
max_len=65536 # --max-len: a smaller one keeps a long run fast (inputs grow to it)
save=0
targets=()
while [ $# -gt 0 ]; do
	case "$1" in
	--time) budget=(-max_total_time="$2"); shift 2 ;;
	--runs) budget=(-runs="$2"); shift 2 ;;
	--save) save=1; shift ;;
	--max-len) max_len=$2; shift 2 ;;
	-h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "fuzz.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
	*) targets+=("$1"); shift ;;
	esac
done

bdir=${COVE_FUZZ_BUILD:-build-fuzz}
if [ ! -f "$bdir/build.ninja" ]; then
	CC=clang meson setup "$bdir" -Dguest=false -Dfuzzing=true \
		-Db_sanitize=address,undefined -Db_lundef=false --buildtype=debugoptimized \
		>"$bdir.log" 2>&1 || { echo "fuzz.sh: meson setup failed, see $bdir.log" >&2; exit 1; }
fi
ninja -C "$bdir" >"$bdir.log" 2>&1 || { echo "fuzz.sh: build failed, see $bdir.log" >&2; exit 1; }
rm -f "$bdir.log"

if [ ${#targets[@]} -eq 0 ]; then
	for f in "$bdir"/fuzz/fuzz_*; do
		[ -f "$f" ] && [ -x "$f" ] && targets+=("${f##*/fuzz_}")
	done
fi

work=${COVE_FUZZ_DIR:-/var/cache/cove/fuzz}
mkdir -p "$work/crashes" || exit 1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=0
for t in "${targets[@]}"; do
	exe=$bdir/fuzz/fuzz_$t
	if [ ! -x "$exe" ]; then
		echo "not ok - fuzz $t: no such target"
		failed=1
		continue
	fi
	mkdir -p "$work/$t"
	log="$work/$t.$$.log" # two runs at once (a long one, the test suite's) keep their own
	start=$(date +%s)
	"$exe" "${budget[@]}" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
		-max_len="$max_len" -artifact_prefix="$work/crashes/$t-" "$work/$t" "fuzz/corpus/$t" \
		>"$log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	last=$(grep -aE '^#[0-9]+' "$log" | tail -1)
	cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
	line="fuzz $t: ${execs:-?} execs in $secs s, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}, max-len $max_len"
	if [ $rc -eq 0 ]; then
		mv -f "$log" "$work/$t.log"
		echo "ok - $line"
	else
		echo "not ok - $line (exit $rc; log $log)"
		grep -E 'ERROR|runtime error|Test unit written' "$log" | head -5 | sed 's/^/    /'
		failed=1
	fi
	if [ $save -eq 1 ] && [ $rc -eq 0 ]; then
		"$exe" -merge=1 "fuzz/corpus/$t" "$work/$t" >"$work/$t.merge.log" 2>&1 ||
			echo "    (merge into fuzz/corpus/$t failed, see $work/$t.merge.log)"
	fi
done
exit $failed
