#!/bin/sh
# Called by the build: make sure the cached guest kernel exists (building it the first time),
# then place it at OUT (and its release string at OUT.release) unless it is already there.
set -eu
out=$1
# root caches the kernel machine-wide; anyone else in their own cache directory
if [ -z "${COVE_CACHE:-}" ] && [ "$(id -u)" -ne 0 ]; then
	export COVE_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/cove"
fi
vmlinux=$("$(dirname "$0")/build.sh")
dir=$(dirname "$vmlinux")
if ! cmp -s "$vmlinux" "$out" 2>/dev/null; then
	cp "$vmlinux" "$out.tmp"
	mv "$out.tmp" "$out"
fi
cp "$dir/release" "$out.release"
