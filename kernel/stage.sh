#!/bin/sh
# Called by the build: make sure the cached guest kernel exists (building it the first time),
# then place it, stripped, at OUT (and its release string at OUT.release) unless it is there.
set -eu
out=$1
# root caches the kernel machine-wide; anyone else in their own cache directory
if [ -z "${COVE_CACHE:-}" ] && [ "$(id -u)" -ne 0 ]; then
	export COVE_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/cove"
fi
vmlinux=$("$(dirname "$0")/build.sh")
dir=$(dirname "$vmlinux")
# Without its symbol table: QEMU reads an ELF kernel's symbols into every VM it starts (for its
# disassembler), ~1.3 MiB of each VM's memory and ~30 ms of each start here; the guest has its
# own (kallsyms). The file is replaced only when it differs (its identity keys the templates).
objcopy --strip-all "$vmlinux" "$out.tmp"
if cmp -s "$out.tmp" "$out"; then
	rm -f "$out.tmp"
else
	mv "$out.tmp" "$out"
fi
cp "$dir/release" "$out.release"
