#!/bin/bash
# The accelerator on the three kinds of host, on any host: no KVM device, a KVM that works, and
# KVM that is present but broken (QEMU aborts on MSR 0x10a; the guest never answers), played by
# kvm-qemu.sh as COVE_QEMU and a KVM device of our own (COVE_KVM_DEVICE). KVM is used only after
# a probe boot under it worked; a broken one costs the first container one notice, then TCG.
. "$(dirname "$0")/lib.sh"
# every boot here is counted: none restored from a template, none made in the background
export COVE_TEMPLATE=0

wrapper=$(cd "$(dirname "$0")" && pwd)/kvm-qemu.sh
# the wrapper is a script under $T that writes its log there: a confined QEMU (its own uid and
# root) could neither run it nor write there, so these QEMUs run as we do
export COVE_QEMU_CONFINE=0
export KVM_REAL_QEMU
KVM_REAL_QEMU=$(command -v qemu-system-x86_64)
export KVM_TSC_KHZ
KVM_TSC_KHZ=$(COVE_ACCEL=tcg "$COVE" system info | awk '$1 == "host" && $2 == "tsc" { print $3 }')
base_root=$COVE_ROOT

# host KIND: a fresh state directory, a KVM device and the wrapper in that mode
host() {
	export COVE_ROOT="$T/$1" KVM_MODE=$1 KVM_LOG="$T/$1.log"
	export COVE_QEMU="$T/qemu-$1" COVE_KVM_DEVICE="$T/kvm-$1"
	cp "$wrapper" "$COVE_QEMU"
	: >"$COVE_KVM_DEVICE"
	: >"$KVM_LOG"
}
# run_ok NAME: cove run --rm busybox echo hi succeeds with "hi"; its stderr is in $T/err
run_ok() {
	local out rc
	out=$("$COVE" run --rm busybox echo hi 2>"$T/err")
	rc=$?
	[ $rc -eq 0 ] && [ "$out" = hi ] || { not_ok "$1" "rc=$rc out=$out" "$(cat "$T/err")"; return 1; }
}
# one_notice NAME PATTERN: the last command's stderr ($T/err) is one line matching PATTERN
one_notice() {
	if [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q -- "$2" "$T/err"; then ok "$1"; else not_ok "$1" "$(cat "$T/err")"; fi
}
log_is() { # NAME EXPECTED: the QEMU starts since the last call, one per line
	local got
	got=$(cat "$KVM_LOG")
	: >"$KVM_LOG"
	expect "$1" "$2" "$got"
}
# info_has NAME PATTERN...: `cove system info` has a line matching each grep PATTERN
info_has() {
	local name=$1 info
	shift
	info=$("$COVE" system info 2>&1)
	for pat in "$@"; do
		grep -q -- "$pat" <<<"$info" || { not_ok "$name" "no line matches: $pat" "$info"; return; }
	done
	ok "$name"
}

# ---- bad choices: one line, 125, nothing made
export COVE_ROOT=$base_root
one_line_125 "--accel with a bad value" "invalid --accel 'fast'" "$COVE" run --rm --accel fast busybox true
COVE_ACCEL=fast one_line_125 "COVE_ACCEL with a bad value" "invalid COVE_ACCEL 'fast'" "$COVE" run --rm busybox true
one_line_125 "--accel without a value" "needs a value" "$COVE" start --accel
expect "a refused --accel leaves no container" "" "$("$COVE" ls -aq)"

# ---- no KVM device: TCG, never a probe
host works
export COVE_KVM_DEVICE=$T/nonexistent
run_ok "no KVM device: runs" && expect "no KVM device: no notice" "" "$(cat "$T/err")"
log_is "no KVM device: TCG, no probe" "tcg"
info_has "no KVM device: system info says tcg and why" "^accelerator *tcg" "not probed: no usable $T/nonexistent"
one_line_125 "no KVM device: --accel kvm fails clearly" "KVM was asked for, but '$T/nonexistent' cannot be opened" \
	"$COVE" run --rm --accel kvm busybox true
COVE_ACCEL=kvm one_line_125 "no KVM device: COVE_ACCEL=kvm fails clearly" "cannot be opened" \
	"$COVE" run --rm busybox true

# ---- a KVM that works: probed once, then every container under KVM with -cpu host
host works
run_ok "working KVM: runs" && expect "working KVM: no notice" "" "$(cat "$T/err")"
log_is "working KVM: a probe, then the container under KVM" "kvm host nodisk
kvm host disk"
run_ok "working KVM: a second container" && log_is "working KVM: the verdict is cached" "kvm host disk"
info_has "working KVM: system info says kvm, when and what the probe said" "^accelerator *kvm$" "^kvm probe .*the probe booted under KVM in [0-9]* ms with -cpu host" "^cpu *host$"
"$COVE" create --name c1 --accel tcg busybox echo hi >/dev/null
: >"$KVM_LOG"
expect "--accel tcg: the container runs" "hi" "$("$COVE" start -a c1 2>&1)"
expect "--accel tcg: under TCG" "tcg" "$(cat "$KVM_LOG")"
expect "--accel tcg: inspect says tcg" "tcg" "$(inspect_field c1 State.Accelerator)"
: >"$KVM_LOG"
"$COVE" start -a --accel kvm c1 >/dev/null 2>&1
expect "start --accel kvm: this start under KVM" "kvm host disk" "$(cat "$KVM_LOG")"
expect "start --accel kvm: inspect says kvm" "kvm" "$(inspect_field c1 State.Accelerator)"
: >"$KVM_LOG"
"$COVE" start -a c1 >/dev/null 2>&1
expect "start: the container's own --accel again" "tcg" "$(cat "$KVM_LOG")"
: >"$KVM_LOG"
COVE_ACCEL=tcg run_ok "COVE_ACCEL=tcg: runs" && log_is "COVE_ACCEL=tcg: under TCG" "tcg"

# ---- nested host whose KVM refuses MSR 0x10a: QEMU 7.2 aborts with -cpu host; the probe finds
# the CPU model that starts, and containers use it
host msr
run_ok "MSR-refusing KVM: runs" && expect "MSR-refusing KVM: no notice" "" "$(cat "$T/err")"
log_is "MSR-refusing KVM: -cpu host aborts, -arch-capabilities boots" "kvm host nodisk
kvm host,-arch-capabilities nodisk
kvm host,-arch-capabilities disk"
info_has "MSR-refusing KVM: system info names the CPU model" "^accelerator *kvm$" "^cpu *host,-arch-capabilities$"

# ---- broken KVM, QEMU aborts: the first run works with one notice, later ones go to TCG
host abort
run_ok "aborting KVM: the first container runs"
one_notice "aborting KVM: one notice, with QEMU's reason" "^cove: KVM does not work on this host (.*MSR 0x10a.*): using TCG"
log_is "aborting KVM: probed (both CPU models, then TCG), then TCG" "kvm host nodisk
kvm host,-arch-capabilities nodisk
tcg
tcg"
run_ok "aborting KVM: the second container runs" && expect "aborting KVM: no notice the second time" "" "$(cat "$T/err")"
log_is "aborting KVM: straight to TCG the second time" "tcg"
info_has "aborting KVM: system info says why" "^accelerator *tcg" "^kvm probe .*failed (QEMU was killed by signal 6 (Aborted); it said: .*MSR 0x10a"
one_line_125 "aborting KVM: --accel kvm fails clearly" "KVM was asked for, but it does not work on this host" \
	"$COVE" run --rm --accel kvm busybox true
# system info --probe tests KVM again: a KVM that was fixed without a new QEMU or kernel
KVM_MODE=works
"$COVE" system info --probe >"$T/info" 2>&1
if grep -q "^accelerator *kvm$" "$T/info" && grep -q "^kvm probe .* (just now): the probe booted under KVM" "$T/info"; then
	ok "system info --probe: probed again"
else
	not_ok "system info --probe: probed again" "$(cat "$T/info")"
fi
: >"$KVM_LOG"
run_ok "system info --probe: KVM is used" && log_is "system info --probe: the container under KVM" "kvm host disk"
KVM_MODE=abort
"$COVE" system info --probe >/dev/null 2>&1
# a new QEMU (another binary) is probed again
KVM_MODE=works
touch -d '2001-01-01' "$COVE_QEMU"
: >"$KVM_LOG"
run_ok "a changed QEMU: runs" && log_is "a changed QEMU: probed again, KVM now" "kvm host nodisk
kvm host disk"

# ---- broken KVM, the guest never answers: the probe gives up after 3 s
host hang
run_ok "hanging KVM: the first container runs"
one_notice "hanging KVM: one notice, with QEMU's reason" "^cove: KVM does not work on this host (.*no answer within 3 s (QEMU said: KVM internal error"
run_ok "hanging KVM: the second container runs" && expect "hanging KVM: no notice the second time" "" "$(cat "$T/err")"
log_is "hanging KVM: one probe under KVM" "kvm host nodisk
tcg
tcg
tcg"

# ---- KVM passes the probe, then a container's boot under it fails: booted again under TCG
host disk-abort
printf 'a\nb\nc\n' >"$T/in"
out=$("$COVE" run -i --rm busybox wc -l <"$T/in" 2>"$T/err")
rc=$?
expect "KVM failing at run time: the container runs under TCG, stdin intact" "0 3" "$rc $(echo $out)"
one_notice "KVM failing at run time: one notice" "^cove: KVM failed before the guest booted (QEMU was killed by signal 6 (Aborted); it said: .*MSR 0x10a.*): booting again under TCG"
log_is "KVM failing at run time: probe, KVM, then TCG" "kvm host nodisk
kvm host disk
tcg"
id=$("$COVE" run -d busybox sleep 600 2>"$T/err")
expect "after it: run -d goes straight to TCG, no notice" "" "$(cat "$T/err")"
expect "after it: under TCG" "tcg" "$(cat "$KVM_LOG")"
expect "after it: inspect says tcg" "tcg" "$(inspect_field "$id" State.Accelerator)"
info_has "KVM failing at run time: system info says why" "^accelerator *tcg" "the probe passed, but a container's boot under KVM then failed"
"$COVE" rm -f "$id" >/dev/null 2>&1
