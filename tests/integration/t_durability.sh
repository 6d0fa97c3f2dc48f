#!/bin/bash
# What a container fsyncs reaches the host's disk: QEMU passes the guest's flushes on as
# fdatasync() of the container's disk image (cache=writeback, not unsafe), seen here with
# strace on QEMU while a container writes with fsync. (A host crash cannot be staged in a
# test; without this, QEMU would make no fdatasync at all.) A --rm container's disk goes with
# its run: its flushes are not passed on, and the host's disk is spared them.
. "$(dirname "$0")/lib.sh"

command -v strace >/dev/null || { not_ok "durability: strace is missing (scripts/setup.sh installs it)"; exit 0; }
"$COVE" run --rm --network none busybox true >/dev/null 2>&1 # the accelerator's verdict first
write='dd if=/dev/zero of=/data bs=64k count=16 conv=fsync 2>/dev/null && echo written'
strace -f -qq -e trace=fdatasync -o "$T/strace" "$COVE" run --name kept --network none busybox \
	sh -c "$write" >"$T/out" 2>&1
expect "the container's write with fsync completes" "written" "$(cat "$T/out")"
n=$(grep -c 'fdatasync(.*= 0' "$T/strace")
if [ "${n:-0}" -ge 1 ]; then ok "QEMU passed the guest's flushes on: $n fdatasync() of the image"
else not_ok "QEMU passed the guest's flushes on" "no fdatasync in $(wc -l <"$T/strace") traced lines"; fi
"$COVE" rm kept >/dev/null

strace -f -qq -e trace=fdatasync -o "$T/strace-rm" "$COVE" run --rm --network none busybox \
	sh -c "$write" >"$T/out" 2>&1
expect "a --rm container's write with fsync completes" "written" "$(cat "$T/out")"
expect "and its disk, which goes with it, is never fdatasync()ed" "0" \
	"$(grep -c 'fdatasync(.*= 0' "$T/strace-rm")"
