#!/bin/sh
# Set up everything cove needs on Debian 12, then build it: the packages (apt-get), the guest
# kernel (built once per machine, cached in /var/cache/cove), cove-init, the initramfs, the
# offline busybox image and the CLI at build/cove. Safe to run again: it only does what is
# missing.
set -eu
cd "$(dirname "$0")/.."

# Build, test and run-time dependencies, by Debian package name.
PACKAGES="build-essential meson ninja-build pkg-config python3 musl-tools
  libext2fs-dev libarchive-dev zlib1g-dev libisal-dev isal libzstd-dev e2fsprogs libjansson-dev libssl-dev libcurl4-openssl-dev
  qemu-system-x86 qemu-utils nftables iproute2 dnsmasq-base util-linux strace
  linux-source-6.1 bc bison flex libelf-dev libssl-dev cpio kmod xz-utils
  busybox-static tmux clang libclang-rt-14-dev
  docker-registry skopeo umoci debootstrap apache2-utils openssl curl zstd"

missing=""
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "setup: installing$missing" >&2
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ ! -f build/build.ninja ]; then
	meson setup build --buildtype=debugoptimized >/dev/null
fi
# The first build compiles the guest kernel (about 12 minutes on 2 cores); later ones reuse it.
ninja -C build
echo "setup: ready: build/cove" >&2
