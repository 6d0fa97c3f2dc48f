#!/bin/bash
# A COVE_QEMU that behaves like QEMU on a host with a KVM of a given kind, on any host: without
# `-accel kvm` it is the real QEMU; with it, KVM_MODE decides (below). A "working" KVM is played
# by the real QEMU under TCG (with the TSC hint cove gives TCG guests, KVM_TSC_KHZ), so that the
# same tests pass on hosts with no /dev/kvm, a broken one, or a good one.
#   works       boots (as TCG)
#   abort       QEMU 7.2 on a nested host: "failed to set MSR 0x10a", then SIGABRT
#   msr         abort with -cpu host, boots with -cpu host,-arch-capabilities
#   hang        "KVM internal error" on stderr, and the guest never answers
#   disk-abort  boots without a disk (cove's probe), aborts with one (a container)
# Each start appends a line to KVM_LOG: "kvm CPU disk|nodisk" or "tcg".
set -u
real=${KVM_REAL_QEMU:-/usr/bin/qemu-system-x86_64}
args=("$@")
kvm=false cpu="" disk=nodisk
for ((i = 0; i < ${#args[@]}; i++)); do
	case "${args[i]}" in
	-accel) [ "${args[i + 1]}" = kvm ] && kvm=true ;;
	-cpu) cpu=${args[i + 1]} ;;
	-drive|-blockdev) disk=disk ;;
	esac
done
if ! $kvm; then
	[ -n "${KVM_LOG:-}" ] && echo tcg >>"$KVM_LOG"
	exec "$real" "$@"
fi
[ -n "${KVM_LOG:-}" ] && echo "kvm $cpu $disk" >>"$KVM_LOG"

abort() {
	echo "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69" >&2
	echo "qemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion \`ret == cpu->kvm_msr_buf->nmsrs' failed." >&2
	kill -ABRT $$
	exit 134
}
case "${KVM_MODE:-works}" in
abort) abort ;;
msr) [ "$cpu" = host ] && abort ;;
disk-abort) [ $disk = disk ] && abort ;;
hang)
	echo "KVM internal error. Suberror: 1" >&2
	echo "emulation failure" >&2
	exec sleep 3600
	;;
esac

# play a working KVM: the same command line under TCG
out=()
for ((i = 0; i < ${#args[@]}; i++)); do
	case "${args[i]}" in
	-accel) out+=(-accel tcg,tb-size=32); i=$((i + 1)) ;;
	-cpu) i=$((i + 1)) ;;
	-append) out+=(-append "${args[i + 1]} tsc_early_khz=${KVM_TSC_KHZ:?}"); i=$((i + 1)) ;;
	*) out+=("${args[i]}") ;;
	esac
done
exec "$real" "${out[@]}"
