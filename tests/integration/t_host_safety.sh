#!/bin/bash
# What a container, or another user of the host, can do to the host through cove: nothing
# through the supervisor's socket unless it is this user (or root), no escape sequences from a
# guest on the terminal, and a run directory that is made again when it is gone (after a reboot,
# /run is empty) and refused when someone else could write it.
. "$(dirname "$0")/lib.sh"

"$COVE" run -d --name c busybox sleep 300 >/dev/null 2>"$T/err" || not_ok "run -d c" "$(cat "$T/err")"
sock=$(ls "$COVE_ROOT"/run/*.sock 2>/dev/null | head -1)

# another user: even with a socket it can reach (its directory opened before dropping to
# nobody, as /tmp may not be searchable here), the supervisor hangs up at once
chmod 711 "$COVE_ROOT/run"
chmod 777 "$sock"
# connect as USER (root or nobody) and ask for stats: did the supervisor answer?
ask() {
	/usr/bin/python3 - "$sock" "$1" <<'PY'
import ctypes, os, socket, struct, sys
d = os.open(os.path.dirname(sys.argv[1]), os.O_PATH)
if sys.argv[2] == "nobody":
    os.setgroups([]); os.setgid(65534); os.setuid(65534)
    ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE: /proc/self/fd stays ours
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
try:
    s.connect("/proc/self/fd/%d/%s" % (d, os.path.basename(sys.argv[1])))
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
