#!/bin/bash
# Defence in depth inside the container, as docker does it: seccomp, no_new_privs, capabilities,
# masked and read-only /proc paths, rlimits, a read-only root with tmpfs, --init.
. "$(dirname "$0")/lib.sh"

status_of() { grep "^$1:" | cut -f2; } # a field of /proc/PID/status on stdin

# ---- the defaults, for the main process and for exec ----
"$COVE" run -d --name sec busybox sh -c 'grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status; exec sleep 300' >/dev/null 2>"$T/err" ||
	not_ok "run -d sec" "$(cat "$T/err")"
main_has_printed() { [ "$("$COVE" logs sec 2>/dev/null | wc -l)" -ge 3 ]; }
wait_until 10 main_has_printed
"$COVE" logs sec >"$T/main" 2>&1
"$COVE" exec sec cat /proc/self/status >"$T/exec" 2>&1
for who in main exec; do
	expect "$who: seccomp filter on (Seccomp: 2)" 2 "$(status_of Seccomp <"$T/$who")"
	expect "$who: no_new_privs" 1 "$(status_of NoNewPrivs <"$T/$who")"
	expect "$who: docker's default capabilities" 00000000a80425fb "$(status_of CapEff <"$T/$who")"
done
expect "exec -u nobody: no capabilities" 0000000000000000 "$("$COVE" exec -u nobody sec cat /proc/self/status 2>&1 | status_of CapEff)"

# a syscall the profile denies fails with EPERM
out=$("$COVE" exec sec unshare -u true 2>&1)
rc=$?
if [ $rc -ne 0 ] && echo "$out" | grep -q "Operation not permitted"; then ok "unshare is denied (Operation not permitted)"; else not_ok "unshare is denied (Operation not permitted)" "rc=$rc" "$out"; fi

# devices: only docker's default nodes open; one the container makes itself (its own root disk,
# the serial console the host logs) opens nowhere, though root may mknod it
for where in /tmp /dev /root; do
	out=$("$COVE" exec sec sh -c "mknod $where/vda b 254 0 && head -c 512 $where/vda | wc -c" 2>&1)
	if echo "$out" | grep -q "Permission denied"; then ok "a disk node made in $where cannot be opened"; else not_ok "a disk node made in $where cannot be opened" "$out"; fi
done
out=$("$COVE" exec sec sh -c 'mknod /dev/ttyS0 c 4 64 && echo hi >/dev/ttyS0' 2>&1)
if echo "$out" | grep -q "Permission denied"; then ok "the console cannot be written from the container"; else not_ok "the console cannot be written from the container" "$out"; fi
expect "the default nodes work (null, zero, full, random, urandom)" "ok" \
	"$("$COVE" exec sec sh -c 'echo x >/dev/null && [ "$(head -c 4 /dev/zero | wc -c)" = 4 ] && ! echo x 2>/dev/null >/dev/full && [ "$(head -c 4 /dev/random | wc -c)" = 4 ] && [ "$(head -c 4 /dev/urandom | wc -c)" = 4 ] && echo ok' 2>&1)"

# masked paths read as empty (/proc/interrupts is in every kernel; the others may not be); /proc/meminfo, which is not masked, as a control
expect "/proc/kcore, /proc/interrupts, /proc/timer_list read as empty; /proc/meminfo does not" "0 0 0 yes" \
	"$("$COVE" exec sec sh -c 'for f in kcore interrupts timer_list; do cat /proc/$f 2>/dev/null | wc -c; done; grep -q MemTotal /proc/meminfo && echo yes' 2>&1 | tr '\n' ' ' | sed 's/ $//')"
# /proc/sys is read-only
out=$("$COVE" exec sec sh -c 'echo cove > /proc/sys/kernel/domainname' 2>&1)
rc=$?
if [ $rc -ne 0 ] && echo "$out" | grep -q "Read-only file system"; then ok "/proc/sys is read-only"; else not_ok "/proc/sys is read-only" "rc=$rc" "$out"; fi
"$COVE" rm -f sec >/dev/null 2>&1

# ---- capabilities from the command line ----
expect "--cap-drop CHOWN" 00000000a80425fa "$("$COVE" run --rm --cap-drop CHOWN busybox cat /proc/self/status 2>&1 | status_of CapEff)"
expect "-u nobody: no capabilities" 0000000000000000 "$("$COVE" run --rm -u nobody busybox cat /proc/self/status 2>&1 | status_of CapEff)"

# a probe for syscalls busybox has no applet for; it runs from a --rootfs directory with
# busybox and its applets
root="$T/root"
mkdir -p "$root/bin"
cp /bin/busybox "$root/bin/busybox"
for a in $("$root/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"; done
cat >"$T/probe.c" <<'EOF'
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

static void report(const char *name, long r)
{
	if (r >= 0)
		printf("%s=ok\n", name);
	else
		printf("%s=%s\n", name, errno == EPERM ? "EPERM" : errno == ENOSYS ? "ENOSYS" : "other");
}

int main(void)
{
	/* KEYCTL_GET_KEYRING_ID of the session keyring, without creating it */
	report("keyctl", syscall(SYS_keyctl, 0, -3, 0));
	report("unshare", syscall(SYS_unshare, CLONE_NEWUTS));
	return 0;
}
EOF
if ! musl-gcc -static -O2 "$T/probe.c" -o "$root/bin/probe" 2>"$T/err"; then
	not_ok "build the syscall probe" "$(cat "$T/err")"
fi

out=$("$COVE" run --rm --rootfs "$root" --cap-add SYS_ADMIN /bin/sh -c 'grep ^CapEff: /proc/self/status | cut -f2; unshare -u true && echo unshare-true=0; probe' 2>&1)
expect "--cap-add SYS_ADMIN sets bit 21" 00000000a82425fb "$(echo "$out" | sed -n 1p)"
expect "--cap-add SYS_ADMIN: unshare -u true works" "unshare-true=0 unshare=ok" "$(echo "$out" | grep unshare | tr '\n' ' ' | sed 's/ $//')" "$out"
expect "--cap-add SYS_ADMIN: keyctl stays denied (EPERM)" keyctl=EPERM "$(echo "$out" | grep keyctl)" "$out"

out=$("$COVE" run --rm --rootfs "$root" --security-opt seccomp=unconfined /bin/sh -c 'grep ^Seccomp: /proc/self/status | cut -f2; probe' 2>&1)
expect "seccomp=unconfined: no filter (Seccomp: 0)" 0 "$(echo "$out" | sed -n 1p)" "$out"
# the probe itself is sound: without the filter keyctl is not refused with EPERM
kc=$(echo "$out" | grep keyctl)
if [ -n "$kc" ] && [ "$kc" != keyctl=EPERM ]; then ok "seccomp=unconfined: keyctl is not denied ($kc)"; else not_ok "seccomp=unconfined: keyctl is not denied" "$out"; fi

# ---- rlimits, read-only root, tmpfs, --init (one container) ----
"$COVE" run --rm --ulimit nofile=100:200 --read-only --tmpfs /data --init busybox sh -c '
	echo "nofile $(ulimit -n) $(ulimit -Hn)"
	touch /x 2>&1
	touch /data/x && echo data-writable
	grep " /data " /proc/mounts
	ps -o pid,args' >"$T/opts" 2>&1
expect "--ulimit nofile=100:200" "nofile 100 200" "$(grep ^nofile "$T/opts")" "$(cat "$T/opts")"
if grep -q "touch: /x: Read-only file system" "$T/opts"; then ok "--read-only: the root cannot be written"; else not_ok "--read-only: the root cannot be written" "$(cat "$T/opts")"; fi
if grep -qx data-writable "$T/opts" && grep -q "^tmpfs /data tmpfs rw" "$T/opts"; then ok "--tmpfs /data: a writable tmpfs"; else not_ok "--tmpfs /data: a writable tmpfs" "$(cat "$T/opts")"; fi
pid1=$(awk '$1 == 1' "$T/opts")
if [ -n "$pid1" ] && ! echo "$pid1" | grep -q 'sh -c' && grep 'sh -c' "$T/opts" | awk '{print $1}' | grep -qv '^1$'; then
	ok "--init: PID 1 is the init, not the command ($pid1)"
else
	not_ok "--init: PID 1 is the init, not the command" "$(cat "$T/opts")"
fi
