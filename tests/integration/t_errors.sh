#!/bin/bash
# Bad input and broken set-ups: a one-line error, exit 125, quickly, nothing left behind.
. "$(dirname "$0")/lib.sh"

one_line_125 "unknown option" "unknown option" "$COVE" run --bogus busybox true
one_line_125 "bad --memory" "invalid --memory" "$COVE" run --memory lots busybox true
one_line_125 "too little --memory" "too small" "$COVE" run --memory 1m busybox true
one_line_125 "bad --cpus" "invalid --cpus" "$COVE" run --cpus zero busybox true
one_line_125 "bad --user" "invalid --user" "$COVE" run -u 'a b' busybox true
one_line_125 "relative -w" "absolute" "$COVE" run -w rel busybox true
one_line_125 "an image that cannot be pulled" "cannot connect to registry 127.0.0.1:1" "$COVE" run 127.0.0.1:1/nosuchimage true
one_line_125 "missing image" "missing IMAGE" "$COVE" run
one_line_125 "unknown command" "unknown command" "$COVE" frobnicate
one_line_125 "-it without a terminal" "terminal" "$COVE" run -it --rm busybox true </dev/null
COVE_QEMU=/nonexistent/qemu one_line_125 "missing QEMU" "COVE_QEMU" "$COVE" run --rm busybox true
one_line_125 "no QEMU in PATH" "qemu-system-x86_64 not found" env PATH=/nonexistent "$COVE" run --rm busybox true
COVE_KERNEL=/nonexistent/vmlinux one_line_125 "missing kernel" "kernel" "$COVE" run --rm busybox true
echo "not a kernel" >"$T/bad-kernel"
COVE_KERNEL="$T/bad-kernel" one_line_125 "a kernel QEMU cannot load" "QEMU said" "$COVE" run --rm busybox true

# a guest that never answers: an initramfs whose init just sleeps
mkdir -p "$T/hang/bin" "$T/hang/dev"
cp /bin/busybox "$T/hang/bin/sh"
printf '#!/bin/sh\nexec /bin/sh -c "while :; do sleep 1000; done"\n' >"$T/hang/init"
chmod +x "$T/hang/init"
(cd "$T/hang" && find . | cpio -o -H newc 2>/dev/null | gzip >"$T/hang.cpio.gz")
start=$(date +%s)
COVE_INITRD="$T/hang.cpio.gz" COVE_BOOT_TIMEOUT=4 one_line_125 "a guest that never answers" "did not answer" "$COVE" run --rm busybox true
took=$(( $(date +%s) - start ))
if [ $took -le 15 ]; then ok "the unanswering guest is given up within seconds (${took}s)"; else not_ok "the unanswering guest is given up within seconds" "took ${took}s"; fi

# a name can only be used once at a time
"$COVE" run --name dup busybox true 2>/dev/null
one_line_125 "a duplicate --name" "already in use" "$COVE" run --name dup busybox true
one_line_125 "an invalid --name" "invalid container name" "$COVE" run --name 'a/b' busybox true
pgrep -f "$COVE_ROOT" >/dev/null && not_ok "no QEMU left behind" "$(pgrep -af "$COVE_ROOT")" || ok "no QEMU left behind"
