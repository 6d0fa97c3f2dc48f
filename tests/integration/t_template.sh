#!/bin/bash
# Templates: the first start of a VM shape boots cold and makes a template in the background;
# later starts are restored from it and behave as a cold boot does, each VM its own (boot_id,
# RNG, AT_RANDOM, MAC, address, clock). A template of another kernel is never used; a damaged
# one gives a cold boot, never an error. (The rest of the suite runs restored, from templates
# scripts/test.sh prepares; t_cold runs some of it again with COVE_TEMPLATE=0.)
. "$(dirname "$0")/lib.sh"
export COVE_TEMPLATES="$T/templates" # this file's own, whatever the suite shares
boot_of() { inspect_field "$1" State.Boot; }
template_ready() { ls "$COVE_TEMPLATES"/*/meta >/dev/null 2>&1; }

one_line_125 "system prepare refuses a bad --memory in one line" "invalid --memory 'lots'" \
	"$COVE" system prepare --memory lots
one_line_125 "system prepare refuses a bad --cpus in one line, as run does" "invalid --cpus '0'" \
	"$COVE" system prepare --cpus 0

# the first start of a shape: cold, and it leaves a template behind
out=$("$COVE" run --name first busybox echo cold 2>&1)
expect "the first start of a shape runs" "cold" "$out"
expect "it boots cold (inspect: State.Boot)" "cold" "$(boot_of first)"
if wait_until 90 template_ready; then
	ok "it makes the shape's template in the background"
else
	not_ok "it makes the shape's template in the background" "$(ls -la "$COVE_TEMPLATES" 2>&1)"
fi
"$COVE" rm first >/dev/null

# the next is restored, and behaves as a cold boot does
out=$("$COVE" run --name second busybox sh -c 'echo restored; exit 3' 2>&1)
expect "a restored container's output and exit code" "restored 3" "$out $?"
expect "it was restored" "restored" "$(boot_of second)"
log=$(inspect_field second BootLogPath)
if grep -q "resumed from a template" "$log" 2>/dev/null; then
	ok "its guest says so in the boot log"
else
	not_ok "its guest says so in the boot log" "$(cat "$log" 2>&1)"
fi
expect "stdin reaches a restored container" "piped" \
	"$(echo piped | "$COVE" run --rm -i busybox cat 2>&1)"

# two at once from one template: each its own
"$COVE" run -d --name a busybox sleep 300 >/dev/null 2>"$T/err" || not_ok "run -d a" "$(cat "$T/err")"
"$COVE" run -d --name b busybox sleep 300 >/dev/null 2>"$T/err" || not_ok "run -d b" "$(cat "$T/err")"
expect "both are restored" "restored restored" "$(boot_of a) $(boot_of b)"
facts() { # boot_id, 16 bytes of urandom, the shell's AT_RANDOM bytes, its MAC and address
	"$COVE" exec "$1" sh -c '
		cat /proc/sys/kernel/random/boot_id
		head -c 16 /dev/urandom | od -An -tx1 | tr -d " \n"; echo
		set -- $(od -An -v -tu8 /proc/$$/auxv)
		while [ $# -gt 1 ]; do [ "$1" = 25 ] && { a=$2; break; }; shift 2; done
		dd if=/proc/$$/mem bs=1 skip="$a" count=16 2>/dev/null | od -An -tx1 | tr -d " \n"; echo
		cat /sys/class/net/eth0/address
		ip -4 -o addr show eth0 | awk "{print \$4}"' 2>&1
}
fa=$(facts a)
fb=$(facts b)
for i in 1 2 3 4 5; do
	what=$(echo "boot_id urandom AT_RANDOM MAC address" | cut -d' ' -f$i)
	x=$(echo "$fa" | sed -n "${i}p")
	y=$(echo "$fb" | sed -n "${i}p")
	if [ -n "$x" ] && [ -n "$y" ] && [ "$x" != "$y" ]; then
		ok "two VMs from one template differ: $what"
	else
		not_ok "two VMs from one template differ: $what" "a: $fa" "b: $fb"
	fi
done
expect "its MAC is the one inspect shows" "$(inspect_field a NetworkSettings.MacAddress)" \
	"$(echo "$fa" | sed -n 4p)"
expect "the two reach each other" "0" \
	"$("$COVE" exec b ping -c 1 -W 5 "$(inspect_field a NetworkSettings.IPAddress)" >/dev/null 2>&1; echo $?)"
skew=$(python3 -c 'import sys,time; print(abs(int(sys.argv[1]) - time.time()) < 2)' \
	"$("$COVE" exec a date +%s 2>&1)" 2>&1)
expect "its clock is the host's, within a second" "True" "$skew"
# stop and start: restored again; exec and cp work
"$COVE" stop -t 1 a >/dev/null 2>&1
"$COVE" start a >/dev/null 2>"$T/err" || not_ok "start a" "$(cat "$T/err")"
expect "a restarted container is restored too" "restored" "$(boot_of a)"
echo copied >"$T/in.txt"
"$COVE" cp "$T/in.txt" a:/tmp/in.txt 2>"$T/err" || not_ok "cp into a" "$(cat "$T/err")"
expect "cp and exec in a restored container" "copied" "$("$COVE" exec a cat /tmp/in.txt 2>&1)"
"$COVE" rm -f a b >/dev/null

# system prepare makes the default shapes now (this one is there: it says so) and lists them
out=$("$COVE" system prepare 2>&1)
expect "system prepare lists the templates, one per shape" "2 1 1" \
	"$(echo "$out" | grep -c '^template ') $(echo "$out" | grep -c 'nics=1 disk=4G') $(echo "$out" | grep -c 'nics=0 disk=4G')" "$out"

# another shape (--network none, another memory size) has its own template
out=$("$COVE" run --rm --network none --memory 256m busybox echo none 2>&1)
expect "another shape boots cold first" "none" "$out"
wait_until 90 sh -c "[ \$(ls '$COVE_TEMPLATES'/*/meta | wc -l) -ge 3 ]" ||
	not_ok "another shape gets its template" "$(ls "$COVE_TEMPLATES")"
"$COVE" run --name n --network none --memory 256m busybox true
expect "then it is restored from its own" "restored" "$(boot_of n)"
"$COVE" rm n >/dev/null

# bind mounts and volumes: a template with as many shares and disks, of the same kinds
mkdir -p "$T/share" && echo from-host >"$T/share/f"
vols() { "$COVE" run --name "$1" --network none -v "$T/share:/data:ro" -v tvol:/v busybox \
	sh -c 'cat /data/f; echo "$0" >>/v/log; touch /data/x 2>/dev/null || echo ro' "$1" 2>&1; }
expect "a container with a bind mount and a volume: first cold" "from-host ro cold" \
	"$(vols v1 | tr '\n' ' ')$(boot_of v1)"
wait_until 90 sh -c "grep -qs '^volumes [0-9]' '$COVE_TEMPLATES'/*/meta" ||
	not_ok "its shape gets a template" "$(cat "$COVE_TEMPLATES"/*/meta 2>&1 | grep -e shares -e volumes)"
expect "then restored, its bind mount and volume in place" "from-host ro restored" \
	"$(vols v2 | tr '\n' ' ')$(boot_of v2)"
expect "what a restored container wrote to its volume is kept" "v1 v2" \
	"$("$COVE" run --rm --network none -v tvol:/v busybox cat /v/log 2>&1 | tr '\n' ' ' | sed 's/ $//')"
"$COVE" rm v1 v2 >/dev/null

# damaged templates: a cold boot that says why, never an error; the template is made again
damaged() { # NAME WHAT-TO-DO-TO-THE-TEMPLATE-DIRECTORY
	local dir
	dir=$(grep -l '^nics 1' "$COVE_TEMPLATES"/*/meta 2>/dev/null | head -1)
	if [ -z "$dir" ]; then
		not_ok "$1: there is a template to damage" "$(ls -la "$COVE_TEMPLATES")"
		return
	fi
	(cd "$(dirname "$dir")" && eval "$2")
	out=$("$COVE" run --name d busybox echo fine 2>&1)
	local boot
	boot=$(boot_of d)
	"$COVE" rm d >/dev/null
	case "$out|$boot" in
	"fine|cold: "*) ok "$1: a cold boot ($boot)" ;;
	*) not_ok "$1: a cold boot" "output: $out" "boot: $boot" ;;
	esac
	if wait_until 90 sh -c "grep -l '^nics 1' '$COVE_TEMPLATES'/*/meta >/dev/null 2>&1"; then
		ok "$1: the template is made again"
	else
		not_ok "$1: the template is made again" "$(ls -la "$COVE_TEMPLATES")"
	fi
	"$COVE" run --name d busybox true
	expect "$1: the next start is restored" "restored" "$(boot_of d)"
	"$COVE" rm d >/dev/null
}
damaged "a truncated device state" 'truncate -s 1000 state'
# (a VM or a keeper that holds the RAM read before would serve it: they are forgotten)
damaged "a damaged RAM file" 'printf garbage | dd of=ram bs=1 seek=1048576 conv=notrunc 2>/dev/null; rm -rf holders'
# a device state QEMU refuses although its digest matches (say, of another QEMU)
damaged "a state QEMU refuses" 'head -c 70000 /dev/urandom >state; python3 -c "
import hashlib, re
d = hashlib.sha256(open(\"state\", \"rb\").read()).hexdigest()
m = open(\"meta\").read()
open(\"meta\", \"w\").write(re.sub(r\"state sha256:[0-9a-f]+\", \"state sha256:\" + d, m))"'

# nothing holds the RAM (no VM, no keeper): starts read it from the file, one for all who start
# at once, while their QEMUs start
(cd "$(dirname "$(grep -l '^nics 1' "$COVE_TEMPLATES"/*/meta | head -1)")" && rm -rf holders)
for i in 1 2 3; do "$COVE" run --name f$i busybox echo f$i >"$T/f$i.out" 2>&1 & done
wait
expect "three at once, the RAM read from its file: their output" "f1 f2 f3" \
	"$(cat "$T/f1.out" "$T/f2.out" "$T/f3.out" | tr '\n' ' ' | sed 's/ $//')"
expect "and all three are restored" "restored restored restored" \
	"$(boot_of f1) $(boot_of f2) $(boot_of f3)"
"$COVE" rm f1 f2 f3 >/dev/null

# a second failure of the same shape's template in a day: it is not made again
dir=$(dirname "$(grep -l '^nics 1' "$COVE_TEMPLATES"/*/meta | head -1)")
(cd "$dir" && head -c 70000 /dev/urandom >state && python3 -c "
import hashlib, re
d = hashlib.sha256(open('state', 'rb').read()).hexdigest()
m = open('meta').read()
open('meta', 'w').write(re.sub(r'state sha256:[0-9a-f]+', 'state sha256:' + d, m))")
"$COVE" run --name d busybox true
case "$(boot_of d)" in "cold: "*) ok "a second refused state: a cold boot" ;;
*) not_ok "a second refused state: a cold boot" "$(boot_of d)" ;; esac
"$COVE" rm d >/dev/null
sleep 5 # (the maker it would have started gives up at once)
expect "after two failures in a day the shape's template is not made again" "2 0" \
	"$(cat "$dir.failed" 2>&1) $(grep -ls '^nics 1' "$COVE_TEMPLATES"/*/meta | wc -l)"
"$COVE" run --name d busybox true
expect "and its containers boot cold, at no cost" "cold" "$(boot_of d)"
"$COVE" rm d >/dev/null

# a template of another kernel (or initramfs, QEMU, cove-init) is never used
cp "$(dirname "$0")/../../build/kernel/vmlinux" "$T/vmlinux"
COVE_KERNEL="$T/vmlinux" "$COVE" run --name k busybox true
expect "a new kernel boots cold: the old kernel's template is not used" "cold" "$(boot_of k)"
"$COVE" rm k >/dev/null

# its template replaces the old kernel's templates, which no start could use again
new=$(stat -c %i "$T/vmlinux")
old=$(stat -c %i "$(dirname "$0")/../../build/kernel/vmlinux")
# (pruned just after the new one is in place)
if wait_until 90 sh -c "grep -qs '^kernel [0-9]*:$new:' '$COVE_TEMPLATES'/*/meta && ! grep -qs '^kernel [0-9]*:$old:' '$COVE_TEMPLATES'/*/meta"; then
	ok "the new kernel's template replaces the old kernel's"
else
	not_ok "the new kernel's template replaces the old kernel's" "$(grep -H '^kernel' "$COVE_TEMPLATES"/*/meta 2>&1)"
fi

# system prepare takes --cpus as run does: 1.5 is rounded up to the 2-CPU shape
out=$("$COVE" system prepare --cpus 1.5 2>&1)
expect "system prepare --cpus 1.5 makes 2-CPU templates" "2" "$(echo "$out" | grep -c 'cpus=2 ')" "$out"
"$COVE" run --name c2 --network none --cpus 1.5 busybox true
expect "and run --cpus 1.5 is restored from one" "restored" "$(boot_of c2)"
"$COVE" rm c2 >/dev/null
