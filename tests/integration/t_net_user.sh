#!/bin/bash
# QEMU's user networking (--network user, the default without root): outbound connections to an
# "upstream" namespace a veth away, the host's loopback as host.cove.internal, and -p on the
# host's loopback; then the same as a user who is not root (nobody, in a mount namespace whose
# root others may enter), for whom `cove network create` says it needs root.
. "$(dirname "$0")/lib.sh" # (which moves this file into a network namespace of its own)

top=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$T/www" && echo page from the host >"$T/www/index.html"
"$PYTHON" -m http.server 8000 --bind 127.0.0.1 --directory "$T/www" >"$T/host.log" 2>&1 &
hostsrv=$!
upstream
echo upstream page >"$T/up.html"
nsenter -t "$up" -n python3 -m http.server 8001 --bind 192.0.2.2 --directory "$T" >"$T/up.log" 2>&1 &
upsrv=$!
wait_until 10 sh -c "ss -ltn | grep -q 127.0.0.1:8000 && nsenter -t $up -n sh -c 'ss -ltn | grep -q :8001'"

out=$("$COVE" run --rm --network user busybox sh -c "ip -4 -o addr show eth0 | awk '{print \$4}'; ip route | awk '/^default/ {print \$3}'; grep nameserver /etc/resolv.conf" 2>&1)
expect "--network user: QEMU's addresses, its DNS" "10.0.2.15/24
10.0.2.2
nameserver 10.0.2.3" "$out"
expect "--network user: outbound to upstream" "upstream page" \
	"$("$COVE" run --rm --network user busybox timeout 10 wget -qO- http://192.0.2.2:8001/up.html 2>&1)"
expect "--network user: the host's loopback is host.cove.internal" "page from the host" \
	"$("$COVE" run --rm --network user busybox timeout 10 wget -qO- http://host.cove.internal:8000/ 2>&1)"
"$COVE" run -d --name uweb --network user -p 127.0.0.1:8090:80 -p 80 busybox sh -c \
	'mkdir /www; echo user page >/www/index.html; exec httpd -f -p 80 -h /www' >/dev/null 2>"$T/err" ||
	not_ok "run -d --network user -p" "$(cat "$T/err")"
wait_until 20 sh -c 'curl -s --max-time 2 http://127.0.0.1:8090/ | grep -q "user page"'
expect "--network user -p 127.0.0.1:8090:80" "user page" "$(curl -s --max-time 10 http://127.0.0.1:8090/ 2>&1)"
rport=$("$COVE" port uweb | awk '$3 ~ /^0.0.0.0:/ { sub(".*:", "", $3); print $3 }')
expect "--network user -p 80: a port the kernel picked" "user page" \
	"$(curl -s --max-time 10 "http://127.0.0.1:${rport:-1}/" 2>&1)"
expect "inspect: the network and address" "user 10.0.2.15" \
	"$(inspect_field uweb HostConfig.NetworkMode) $(inspect_field uweb NetworkSettings.IPAddress)"
one_line_125 "--network user: a port in use fails before it starts" "port 8090 is already in use" \
	"$COVE" run --rm --network user -p 127.0.0.1:8090:80 busybox true
"$COVE" rm -f uweb >/dev/null 2>&1

# as nobody: a root of its own that others may enter (the host's / and /dev may be 0700), the
# host's /usr, /etc, /proc, /sys, /var and /dev's character devices, this checkout as /repo and a /tmp of its own
if [ "$COVE" = "$top/build/cove" ] && command -v setpriv >/dev/null; then
	cat >"$T/rootless.sh" <<-'EOF'
		set -u
		N=$1 top=$2
		mount --make-rprivate /
		mount -t tmpfs -o mode=755 tmpfs "$N"
		for d in usr etc proc sys var; do mkdir "$N/$d"; mount --rbind "/$d" "$N/$d"; done
		mkdir -m 755 "$N/dev"
		for d in null zero full random urandom tty kvm; do
			[ -e "/dev/$d" ] && touch "$N/dev/$d" && mount --bind "/dev/$d" "$N/dev/$d"
		done
		for l in bin sbin lib lib32 lib64 libx32; do [ -L "/$l" ] && ln -s "$(readlink "/$l")" "$N/$l"; done
		mkdir -m 1777 "$N/tmp" && mkdir "$N/repo" && mount --bind "$top" "$N/repo"
		exec chroot "$N" setpriv --reuid=nobody --regid=nogroup --clear-groups env -i \
			PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp COVE_ROOT=/tmp/state sh -c '
			C=/repo/build/cove
			echo "uid $(id -u)"
			echo "default $($C run --rm busybox timeout 10 wget -qO- http://192.0.2.2:8001/up.html 2>&1)"
			$C run -d --name w -p 127.0.0.1:8091:80 busybox sh -c "mkdir /www; echo rootless page >/www/index.html; exec httpd -f -p 80 -h /www" >/dev/null 2>/tmp/run.err || echo "run -d: $(cat /tmp/run.err)"
			for i in $(seq 100); do curl -s --max-time 2 http://127.0.0.1:8091/ 2>/dev/null | grep -q rootless && break; sleep 0.2; done
			echo "published $(curl -s --max-time 10 http://127.0.0.1:8091/ 2>&1)"
			echo "network create $($C network create x 2>&1; echo "rc $?")" | tr "\n" " "; echo
			echo "bridge $($C run --rm --network cove busybox true 2>&1; echo "rc $?")" | tr "\n" " "; echo
			mkdir /tmp/src && echo hi >/tmp/src/a
			$C run --rm --network none -v /tmp/src:/src busybox sh -c "echo new >/src/out; chmod 640 /src/out; chmod u+s /src/out" >/dev/null 2>&1
			echo "bind $(cat /tmp/src/out) $(stat -c "%u %a" /tmp/src/out)"
			echo "file $($C run --rm --network none -v /tmp/src/a:/etc/a:ro busybox sh -c "cat /etc/a; ls /etc/a" 2>&1 | tr "\n" " ")"
			$C run --rm --network none -v v1:/v busybox sh -c "echo kept >/v/f" >/dev/null 2>&1
			echo "volume $($C run --rm --network none -v v1:/v busybox cat /v/f 2>&1)"
			$C system prepare >/dev/null 2>&1
			$C run --name t busybox true >/dev/null 2>&1
			echo "template $($C inspect t 2>&1 | grep -o "\"Boot\": \"[^\"]*")"
			$C rm -f w t >/dev/null 2>&1
			rm -rf /tmp/state/cache/templates # (its keeper leaves with it)'
	EOF
	mkdir -p "$T/nroot"
	unshare -m bash "$T/rootless.sh" "$T/nroot" "$top" >"$T/rootless.out" 2>&1
	expect "rootless: cove runs as nobody" "uid 65534" "$(grep '^uid' "$T/rootless.out")" "$(cat "$T/rootless.out")"
	expect "rootless: outbound to upstream by default" "default upstream page" "$(grep '^default' "$T/rootless.out")"
	expect "rootless: -p 127.0.0.1:8091:80" "published rootless page" "$(grep '^published' "$T/rootless.out")"
	expect "rootless: network create needs root, in one line" \
		"network create cove: cove network create needs root (a bridge and NAT rules on the host); without root containers use --network user rc 125 " \
		"$(grep '^network create' "$T/rootless.out")"
	expect "rootless: --network cove needs root, in one line" \
		"bridge cove: --network cove needs root; without root a container has --network user (QEMU's user networking) or none rc 125 " \
		"$(grep '^bridge' "$T/rootless.out")"
	expect "rootless: a bind mount's new file is the user's, its mode kept, no setuid bit" \
		"bind new 65534 640" "$(grep '^bind' "$T/rootless.out")"
	expect "rootless: a single file bind (linked alone into the state directory)" \
		"file hi /etc/a " "$(grep '^file' "$T/rootless.out")"
	expect "rootless: a named block volume keeps its data" "volume kept" "$(grep '^volume' "$T/rootless.out")"
	expect "rootless: restored from a template" 'template "Boot": "restored' "$(grep '^template' "$T/rootless.out")"
else
	not_ok "rootless: needs build/cove and setpriv" "COVE=$COVE"
fi
kill "$upsrv" "$up" "$hostsrv" 2>/dev/null
