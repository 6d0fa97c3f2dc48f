#!/bin/sh
# Build cove's guest kernel (an uncompressed PVH vmlinux) from Debian's linux-source-6.1,
# once per machine: the result is cached under a key made of the config fragment, this script
# and the source package version. Prints the path of the cached vmlinux on stdout.
#
#   kernel/build.sh [--print-path]      (COVE_CACHE overrides /var/cache/cove)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
frag="$here/config-x86_64"
src_tar=/usr/src/linux-source-6.1.tar.xz
cache=${COVE_CACHE:-/var/cache/cove}

if [ ! -r "$src_tar" ]; then
	echo "kernel/build.sh: $src_tar missing; run scripts/setup.sh (installs linux-source-6.1)" >&2
	exit 1
fi
src_ver=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || echo unknown)
key=$( (cat "$frag" "$0"; echo "$src_ver") | sha256sum | cut -c1-16)
out="$cache/kernel/$key"

if [ "${1:-}" = "--print-path" ]; then
	echo "$out/vmlinux"
	exit 0
fi
if [ -s "$out/vmlinux" ]; then
	echo "$out/vmlinux"
	exit 0
fi

# One build at a time per cache: a second caller (another checkout, a parallel build) waits
# for the first and then finds its result.
mkdir -p "$cache/kernel"
exec 9>"$cache/kernel/lock"
if ! flock -n 9; then
	echo "kernel: another build of the guest kernel is running; waiting for it" >&2
	flock 9
fi
if [ -s "$out/vmlinux" ]; then
	echo "$out/vmlinux"
	exit 0
fi
work=$(mktemp -d "$cache/kernel/build.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
start=$(date +%s)
echo "kernel: building linux-source $src_ver with $(basename "$frag") (first time on this machine, ~10 min)" >&2
tar -xJf "$src_tar" -C "$work"
ksrc="$work/linux-source-6.1"
b="$work/build"
mkdir -p "$b"
make -s -C "$ksrc" O="$b" tinyconfig >/dev/null
"$ksrc/scripts/kconfig/merge_config.sh" -m -O "$b" "$b/.config" "$frag" >"$work/merge.log" 2>&1
make -s -C "$ksrc" O="$b" olddefconfig >/dev/null

# Every option the fragment sets must be in the final config.
grep -E '^CONFIG_[A-Z0-9_]+=' "$frag" | while IFS= read -r line; do
	grep -qxF "$line" "$b/.config" || { echo "kernel: option lost by olddefconfig: $line" >&2; echo x; }
done >"$work/missing"
if [ -s "$work/missing" ]; then
	echo "kernel: config fragment does not apply cleanly; fix kernel/config-x86_64" >&2
	exit 1
fi

make -s -C "$ksrc" O="$b" -j"$(nproc)" vmlinux >"$work/make.log" 2>&1 || {
	tail -30 "$work/make.log" >&2
	echo "kernel: build failed (log above)" >&2
	exit 1
}
stage="$work/out"
mkdir -p "$stage"
cp "$b/vmlinux" "$stage/vmlinux"
cp "$b/.config" "$stage/config"
strip --strip-debug "$stage/vmlinux" 2>/dev/null || true
make -s -C "$ksrc" O="$b" kernelrelease >"$stage/release" 2>/dev/null
rm -rf "$out"
mv "$stage" "$out"
echo "kernel: built in $(( $(date +%s) - start )) s -> $out/vmlinux" >&2
echo "$out/vmlinux"
