#!/bin/bash
# cove cp both ways: trees with owners, modes, times, symlinks and a large file; docker's rules
# for where things land; errors.
. "$(dirname "$0")/lib.sh"

# the tree: a symlink (relative and absolute), a 20 MiB random file, a file owned 1234:5678 mode
# 0640, a 0700 directory, an empty directory; every time set in the past so that a copy that
# does not keep them shows
src="$T/src/tree"
mkdir -p "$src/priv" "$src/empty"
echo hello >"$src/a"
ln -s a "$src/link"
ln -s /etc/passwd "$src/abslink"
head -c 20M /dev/urandom >"$src/big"
echo owned >"$src/owned"
chown 1234:5678 "$src/owned"
chmod 0640 "$src/owned"
echo secret >"$src/priv/s"
chmod 0700 "$src/priv"
find "$src" -depth -exec touch -h -d '2001-02-03 04:05:06' {} +

"$COVE" run -d --name c busybox sleep 300 >/dev/null 2>"$T/err" || not_ok "run -d c" "$(cat "$T/err")"

# host -> container, to a new name: /dst is the tree
out=$("$COVE" cp "$src" c:/dst 2>&1)
expect "cp DIR c:/dst (new name)" "0 ''" "$? '$out'"
# what the container sees: name, mode, owner, mtime, link target; and the big file's content
list='cd "$0" && find . | sort | while read -r f; do echo "$f $(stat -c "%a %u %g %Y" "$f") $(readlink "$f")"; done'
"$COVE" exec c sh -c "$list" /dst >"$T/in-ctr" 2>&1
sh -c "$list" "$src" >"$T/on-host" 2>&1
if cmp -s "$T/on-host" "$T/in-ctr"; then ok "in the container: names, modes, owners, times, symlinks as on the host"; else not_ok "in the container: names, modes, owners, times, symlinks as on the host" "$(diff "$T/on-host" "$T/in-ctr")"; fi
expect "in the container: the 20 MiB file's content" "$(md5sum <"$src/big" | cut -d' ' -f1)" "$("$COVE" exec c md5sum /dst/big 2>&1 | cut -d' ' -f1)"

# container -> host, to a new name: $T/back is /dst (-a: with the owners, as docker's -a)
out=$("$COVE" cp -a c:/dst "$T/back" 2>&1)
expect "cp -a c:/dst HOSTDIR (new name)" "0 ''" "$? '$out'"
if python3 "$(dirname "$0")/treediff.py" "$src" "$T/back" >"$T/diff" 2>&1; then ok "the round trip gives the same tree (contents, modes, owners, times, links)"; else not_ok "the round trip gives the same tree (contents, modes, owners, times, links)" "$(cat "$T/diff")"; fi
expect "the round trip keeps the top directory's mode and time" "$(stat -c '%a %u %g %Y' "$src")" "$(stat -c '%a %u %g %Y' "$T/back" 2>&1)"

# without -a, what comes out of a container belongs to whoever copies it (docker's rule)
"$COVE" cp c:/dst/owned "$T/owned-plain" >/dev/null 2>&1
expect "cp c:FILE without -a: the file is ours" "$(id -u) $(id -g) 640" "$(stat -c '%u %g %a' "$T/owned-plain" 2>&1)"

# a hostile container: a raw disk device and a setuid-root shell, made as its root may
"$COVE" exec c sh -c 'mkdir /d && mknod /d/disk b 8 0 && chmod 666 /d/disk && cp /bin/busybox /d/s && chmod 4755 /d/s && mkfifo /d/fifo' >"$T/err" 2>&1 ||
	not_ok "hostile files made in the container" "$(cat "$T/err")"
"$COVE" cp -a c:/d "$T/hostile" >"$T/hostile.out" 2>"$T/err"
rc=$?
expect "cp of a device node: skipped with one line, the rest copied" "0 1 no-disk" \
	"$rc $(grep -c 'skipped 1 device node' "$T/err") $([ -e "$T/hostile/disk" ] && echo disk || echo no-disk)"
expect "cp of a setuid file: the bit is cleared on the host" "755" "$(stat -c '%a' "$T/hostile/s" 2>&1)"
expect "cp of a FIFO: kept (it is no device)" "fifo" "$(stat -c '%F' "$T/hostile/fifo" 2>&1)"

# where things land: into an existing directory, or as a new name
"$COVE" cp "$src/a" c:/tmp >/dev/null 2>&1
"$COVE" cp "$src/a" c:/tmp/renamed >/dev/null 2>&1
"$COVE" cp "$src" c:/tmp >/dev/null 2>&1
expect "cp FILE/DIR into an existing directory or to a new name" "hello hello secret" \
	"$("$COVE" exec c sh -c 'cat /tmp/a /tmp/renamed /tmp/tree/priv/s' 2>&1 | tr '\n' ' ' | sed 's/ $//')"
mkdir "$T/out"
"$COVE" cp c:/dst/a "$T/out" >/dev/null 2>&1
"$COVE" cp c:/dst/a "$T/out/renamed" >/dev/null 2>&1
"$COVE" cp c:/dst "$T/out" >/dev/null 2>&1
expect "cp c:FILE/c:DIR into an existing host directory or to a new name" "hello hello secret" \
	"$(cat "$T/out/a" "$T/out/renamed" "$T/out/dst/priv/s" 2>&1 | tr '\n' ' ' | sed 's/ $//')"

# DIR/. copies the contents
mkdir "$T/contents"
"$COVE" cp c:/dst/. "$T/contents" >"$T/out.txt" 2>&1
expect "cp c:/dir/. copies the contents" "0 owned no-dst" "$? $(cat "$T/contents/owned" 2>&1) $([ -e "$T/contents/dst" ] && echo dst || echo no-dst)"
"$COVE" exec c mkdir /into
"$COVE" cp "$src/." c:/into >/dev/null 2>&1
expect "cp DIR/. c:/dir copies the contents" "hello no-tree" "$("$COVE" exec c sh -c 'cat /into/a; [ -e /into/tree ] && echo tree || echo no-tree' 2>&1 | tr '\n' ' ' | sed 's/ $//')"

# a directory that must exist (DST ending in /)
"$COVE" cp "$src/a" c:/no-such-dir/ >/dev/null 2>"$T/err"
rc=$?
if [ $rc -ne 0 ] && grep -q "no-such-dir" "$T/err"; then ok "cp FILE c:/missing-dir/ fails, naming it"; else not_ok "cp FILE c:/missing-dir/ fails, naming it" "rc=$rc" "$(cat "$T/err")"; fi

# a missing source
"$COVE" cp "$T/nope" c:/x >/dev/null 2>"$T/err"
rc=$?
if [ $rc -ne 0 ] && grep -q "$T/nope" "$T/err"; then ok "cp of a missing host file fails, naming it"; else not_ok "cp of a missing host file fails, naming it" "rc=$rc" "$(cat "$T/err")"; fi
"$COVE" cp c:/nope "$T/x" >/dev/null 2>"$T/err"
rc=$?
if [ $rc -ne 0 ] && grep -q "/nope" "$T/err" && [ ! -e "$T/x" ]; then ok "cp of a missing container file fails, naming it"; else not_ok "cp of a missing container file fails, naming it" "rc=$rc" "$(cat "$T/err")"; fi

# a stopped container (docker allows it): cove boots it just for the copy and leaves its state
"$COVE" stop -t 0 c >/dev/null 2>&1
before="$(inspect_field c State.Status) $(inspect_field c State.ExitCode) $(inspect_field c State.FinishedAt)"
echo into-stopped >"$T/x"
out=$("$COVE" cp "$T/x" c:/x 2>&1)
expect "cp into a stopped container" "0 ''" "$? '$out'"
out=$("$COVE" cp c:/x "$T/y" 2>&1)
expect "cp from a stopped container gets what went in" "0 into-stopped" "$? $(cat "$T/y" 2>/dev/null)" "$out"
after="$(inspect_field c State.Status) $(inspect_field c State.ExitCode) $(inspect_field c State.FinishedAt)"
expect "a copy leaves the stopped container's state as it was" "$before" "$after"
"$COVE" cp c:/no-such "$T/z" >/dev/null 2>"$T/err"
rc=$?
if [ $rc -ne 0 ] && grep -q "no-such" "$T/err" && [ "$(wc -l <"$T/err")" -eq 1 ] && [ "$(inspect_field c State.Status)" = exited ]; then
	ok "a failed copy from a stopped container says why and leaves it stopped"
else
	not_ok "a failed copy from a stopped container says why and leaves it stopped" "rc=$rc" "$(cat "$T/err")"
fi
