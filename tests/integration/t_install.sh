#!/bin/bash
# `meson install` puts cove and everything it needs at run time (kernel, initramfs, image) in
# standard places under the prefix; the installed binary runs a container with no build tree.
. "$(dirname "$0")/lib.sh"
src=$(cd "$(dirname "$0")/../.." && pwd)

if meson setup "$T/b" "$src" --prefix="$T/prefix" >"$T/log" 2>&1 && ninja -C "$T/b" >>"$T/log" 2>&1 &&
	meson install -C "$T/b" >>"$T/log" 2>&1; then
	ok "meson install succeeds"
else
	not_ok "meson install succeeds" "$(tail -5 "$T/log")"
fi
for f in bin/cove share/cove/vmlinux share/cove/initramfs.cpio.gz share/cove/images/busybox.oci.tar; do
	[ -e "$T/prefix/$f" ] && ok "installed $f" || not_ok "installed $f"
done
rm -rf "$T/b"
out=$("$T/prefix/bin/cove" run --rm busybox echo from-installed 2>&1)
expect "the installed cove runs a container (the offline busybox, loaded into the store)" from-installed "$out"
expect "... after which busybox is an ordinary image" "docker.io/library/busybox" "$("$T/prefix/bin/cove" images | awk 'NR==2 {print $1}')"
