#!/bin/bash
# What a container, or another user of the host, can do to the host through cove: nothing
# through the supervisor's socket unless it is this user (or root), no escape sequences from a
# guest on the terminal, and a run directory that is made again when it is gone (after a reboot,
# /run is empty) and refused when someone else could write it.
. "$(dirname "$0")/lib.sh"

"$COVE" run -d --name c busybox sleep 300 >/dev/null 2>"$T/err" || not_ok "run -d c" "$(cat "$T/err")"
sock=$(ls "$COVE_ROOT"/run/*.sock 2>/dev/null | head -1)

# another user: even with a socket it can reach, the supervisor hangs up at once
chmod 711 "$COVE_ROOT/run"
chmod 777 "$sock"
# connect as USER (root or nobody) and ask for stats: did the supervisor answer?
ask() {
	/usr/bin/python3 - "$sock" "$1" <<'PY'
import os, socket, struct, sys
# the socket's directory becomes the cwd before dropping to nobody: neither / nor /tmp need be
# searchable by others here
os.chdir(os.path.dirname(sys.argv[1]))
if sys.argv[2] == "nobody":
    os.setgroups([]); os.setgid(65534); os.setuid(65534)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
try:
    s.connect(os.path.basename(sys.argv[1]))
except OSError as e:
    print("no-connect", e.errno); sys.exit()
try:
    s.sendall(struct.pack("<IHHI", 0, 12, 0, 0))  # STATS
    print("uid %d %s" % (os.getuid(), "answered" if s.recv(100) else "hung-up"))
except (ConnectionResetError, BrokenPipeError):
    print("uid %d hung-up" % os.getuid())
except socket.timeout:
    print("uid %d silent" % os.getuid())
PY
}
expect "this user's connection is answered" "uid 0 answered" "$(ask root)"
got=$(ask nobody)
expect "another user's connection is hung up on" "uid 65534 hung-up" "$got"
chmod 700 "$COVE_ROOT/run"
expect "this user still drives it" "ok" "$("$COVE" exec c echo ok 2>&1)"

# an exec START that asks for every capability and no seccomp filter gets the container's own
# (the CLI never sends one; another client on the socket could)
/usr/bin/python3 - "$sock" >"$T/raw" 2>&1 <<'PY'
import socket, struct, sys
def s32(v): return struct.pack("<I", v)
def st(x): x = x.encode(); return s32(len(x)) + x
def sv(l): return s32(len(l)) + b"".join(st(x) for x in l)
p = sv(["grep", "-E", "^(CapEff|Seccomp):", "/proc/self/status"]) + sv(["PATH=/bin:/usr/bin"])
p += st("/") + st("") + st("/dev/vda") + st("") + s32(0) + s32(0) + s32(0)
p += bytes([0, 0]) + struct.pack("<HH", 0, 0) + bytes([1, 0, 0, 0, 1])  # exec, unconfined
p += struct.pack("<Q", (1 << 41) - 1) + s32(0) + s32(0)                  # every capability
p += bytes([0]) + st("") + st("") + s32(0)                                 # no net, hosts, resolv, mounts
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(struct.pack("<IHHI", len(p), 2, 0, 1) + p)
buf, out = b"", b""
while True:
    d = s.recv(65536)
    if not d: break
    buf += d
    while len(buf) >= 12:
        n, t, f, sid = struct.unpack("<IHHI", buf[:12])
        if len(buf) < 12 + n: break
        if t == 6: out += buf[12:12 + n]
        if t in (10, 11): print(out.decode().replace("\t", " ").strip()); sys.exit()
        buf = buf[12 + n:]
PY
want=$("$COVE" exec c grep -E '^(CapEff|Seccomp):' /proc/self/status 2>&1 | tr '\t' ' ')
expect "an exec cannot ask for more than the container has" "$want" "$(cat "$T/raw")"

# guest text reaches the terminal without its escape sequences, on one line
"$COVE" run --rm busybox "$(printf 'no\033[2Jsuch\ncmd')" >/dev/null 2>"$T/err"
rc=$?
if [ $rc -eq 127 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && ! grep -q "$(printf '\033')" "$T/err" && grep -q "no?\[2Jsuch?cmd" "$T/err"; then
	ok "a guest's error text: one line, no control characters"
else
	not_ok "a guest's error text: one line, no control characters" "rc=$rc" "$(cat -v "$T/err")"
fi

# the run directory, gone (a reboot) and made again by start; refused when others may write it
"$COVE" stop -t 0 c >/dev/null 2>&1
rm -rf "$COVE_ROOT/run"
expect "start after the run directory is gone" "c" "$("$COVE" start c 2>&1)"
expect "and it runs" "ok" "$("$COVE" exec c echo ok 2>&1)"
"$COVE" stop -t 0 c >/dev/null 2>&1
chmod 777 "$COVE_ROOT/run"
"$COVE" start c >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -ne 0 ] && grep -q "run.* is not a directory of this user's that only it may write" "$T/err"; then
	ok "a run directory others may write is refused, saying what to do"
else
	not_ok "a run directory others may write is refused, saying what to do" "rc=$rc" "$(cat "$T/err")"
fi
chmod 700 "$COVE_ROOT/run"

# QEMU, which runs the guest's devices, runs under a seccomp filter (-sandbox on, ...)
"$COVE" start c >/dev/null 2>&1
sup=$(ctr_pid c)
q=$(qemu_children "$sup" | head -1)
expect "QEMU runs under a seccomp filter" "2" "$(sed -n 's/^Seccomp:[[:space:]]*//p' "/proc/$q/status" 2>/dev/null)"
expect "and the container works under it" "ok" "$("$COVE" exec c echo ok 2>&1)"

# ... as a uid of its own (one per VM, from 0x70000000), in a root of its own holding only what
# it needs; cove's state is not in it
quid=$(awk '/^Uid:/ { print $2 }' "/proc/$q/status")
if [ "${quid:-0}" -ge $((0x70000000)) ] && [ "$quid" -lt $((0x70000000 + 4096)) ]; then
	ok "QEMU runs as a uid of its own ($quid)"
else
	not_ok "QEMU runs as a uid of its own" "uid: ${quid:-?}"
fi
expect "QEMU's root holds only /usr, the library links, etc, dev and proc" \
	"bin dev etc lib lib32 lib64 proc sbin usr" "$(ls "/proc/$q/root" 2>&1 | grep -vx libx32 | xargs)"
expect "and no device but null, zero, random, urandom" "fd null random urandom zero" \
	"$(ls "/proc/$q/root/dev" 2>&1 | xargs)"
[ -e "/proc/$q/root$COVE_ROOT" ] || [ -e "/proc/$q/root/tmp" ] && not_ok "cove's state is out of QEMU's sight" "$(ls -d "/proc/$q/root$COVE_ROOT" "/proc/$q/root/tmp" 2>&1)" || ok "cove's state is out of QEMU's sight"
"$COVE" run -d --name c2 busybox sleep 300 >/dev/null 2>&1
q2=$(qemu_children "$(ctr_pid c2)" | head -1)
quid2=$(awk '/^Uid:/ { print $2 }' "/proc/$q2/status" 2>/dev/null)
if [ -n "$quid2" ] && [ "$quid2" != "$quid" ] && [ "$quid2" -ge $((0x70000000)) ]; then
	ok "a second VM's QEMU has another uid ($quid2)"
else
	not_ok "a second VM's QEMU has another uid" "first $quid, second ${quid2:-?}"
fi
"$COVE" rm -f c2 >/dev/null 2>&1
