#!/bin/bash
# -e, -w, -u, --hostname, --memory, --cpus as the container sees them.
. "$(dirname "$0")/lib.sh"

export FROM_HOST=copied
out=$("$COVE" run --rm -e FOO=bar -e FROM_HOST -w /work/dir -u 1000:1001 --hostname box1 \
	--memory 256m --cpus 2 busybox sh -c \
	'echo "$FOO $FROM_HOST"; pwd; id -u; id -g; hostname; grep MemTotal /proc/meminfo; nproc' 2>"$T/err")
rc=$?
expect "run with options exits 0" 0 "$rc" "$(cat "$T/err")"
expect "-e sets and copies variables" "bar copied" "$(echo "$out" | sed -n 1p)"
expect "-w sets (and creates) the working directory" /work/dir "$(echo "$out" | sed -n 2p)"
expect "-u sets the uid" 1000 "$(echo "$out" | sed -n 3p)"
expect "-u sets the gid" 1001 "$(echo "$out" | sed -n 4p)"
expect "--hostname" box1 "$(echo "$out" | sed -n 5p)"
mem_kb=$(echo "$out" | sed -n 6p | awk '{print $2}')
if [ -n "$mem_kb" ] && [ "$mem_kb" -gt 200000 ] && [ "$mem_kb" -le 262144 ]; then ok "--memory 256m is the VM's memory ($mem_kb kB)"; else not_ok "--memory 256m is the VM's memory" "MemTotal: $mem_kb kB"; fi
expect "--cpus 2 gives two CPUs" 2 "$(echo "$out" | sed -n 7p)"

# user and group names come from the image's /etc/passwd and /etc/group
out=$("$COVE" run --rm -u www-data:mail busybox sh -c 'id; echo $HOME' 2>&1)
expect "-u NAME:GROUP resolves in the image" "uid=33(www-data) gid=12(mail) /var/www" "$(echo $out)"
out=$("$COVE" run --rm -u 0:nogroup busybox id 2>&1)
expect "-u keeps the supplementary groups /etc/group gives" "uid=0(root) gid=65534(nogroup) groups=10(wheel)" "$out"
"$COVE" run --rm -u nosuchuser busybox id >/dev/null 2>"$T/err"
rc=$?
if [ $rc -eq 126 ] && grep -q "unable to find user 'nosuchuser'" "$T/err"; then ok "an unknown user name fails with 126 and says so"; else not_ok "an unknown user name fails with 126 and says so" "rc=$rc $(cat "$T/err")"; fi

# the default environment and hostname
out=$("$COVE" run --rm busybox sh -c 'echo $PATH; echo $HOME; hostname | wc -c' 2>&1)
expect "default PATH" /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$(echo "$out" | sed -n 1p)"
expect "HOME from /etc/passwd" /root "$(echo "$out" | sed -n 2p)"
expect "default hostname is the 12-char short ID" 13 "$(echo "$out" | sed -n 3p)"

# --rootfs DIR
mkdir -p "$T/root/bin"
cp /bin/busybox "$T/root/bin/busybox"
ln -s busybox "$T/root/bin/sh"
echo from-dir >"$T/root/marker"
out=$("$COVE" run --rm --rootfs "$T/root" /bin/sh -c '/bin/busybox cat /marker' 2>&1)
expect "--rootfs DIR runs from that directory" from-dir "$out"

# death by a signal gives 128+N: a program that faults (PID 1 of its namespace ignores
# signals it has no handler for, except the kernel's own, as in docker)
printf 'int main(void) { *(volatile int *)0 = 1; return 0; }\n' >"$T/segv.c"
musl-gcc -static -O0 "$T/segv.c" -o "$T/root/bin/segv"
"$COVE" run --rm --rootfs "$T/root" /bin/segv 2>"$T/err"
expect "a process killed by SIGSEGV gives 139" 139 $? "$(cat "$T/err")"
