#!/bin/bash
# Networking, as root, all inside a network namespace this test makes (the host's own
# interfaces, routes and firewall are never touched): each container gets its own address on
# the cove0 bridge, the host reaches it, containers reach each other, outbound traffic is
# NATed to an "upstream" namespace joined by a veth, --network none has only loopback, and a
# killed supervisor leaves no tap and no lease.
. "$(dirname "$0")/lib.sh" # (which moves this file into a network namespace of its own)

addr_of() { inspect_field "$1" NetworkSettings.IPAddress; }

# its own address, the one inspect shows, and the gateway answers
"$COVE" run -d --name web busybox sh -c 'mkdir /www; echo hello from web >/www/index.html; exec httpd -f -p 80 -h /www' >/dev/null 2>"$T/err" ||
	not_ok "run -d web" "$(cat "$T/err")"
wait_until 20 "$COVE" exec web wget -qO /dev/null http://127.0.0.1/ # httpd listens a moment after run -d
ip=$(addr_of web)
inside=$("$COVE" exec web sh -c "ip -4 -o addr show eth0 | awk '{print \$4}'" 2>&1)
expect "a container has its own address, as inspect says" "$ip/24" "$inside"
case "$ip" in 10.89.0.*|10.9[0-2].0.*|172.30.0.*|192.168.100.*) ok "its address is on cove's subnet ($ip)" ;;
*) not_ok "its address is on cove's subnet" "got '$ip'" ;; esac
expect "the host reaches it: a page from its httpd" "hello from web" \
	"$(curl -s --max-time 10 "http://$ip/" 2>&1)"
io=$("$COVE" inspect web | python3 -c 'import json,sys; n=json.load(sys.stdin)[0]["NetworkSettings"]; print(n["RxBytes"] > 0, n["TxBytes"] > len("hello from web"))' 2>&1)
expect "inspect counts the bytes its NIC moved (RxBytes, TxBytes)" "True True" "$io"
expect "it resolves its own name and host.cove.internal from /etc/hosts" "2" \
	"$("$COVE" exec web sh -c 'grep -c -e "$(hostname)" -e host.cove.internal /etc/hosts' 2>&1)"

# another container reaches it by address (busybox-static's wget -T crashes: timeout instead)
expect "a second container fetches from the first" "hello from web" \
	"$("$COVE" run --rm busybox timeout 10 wget -q -O - "http://$ip/" 2>&1)"

# outbound: an upstream namespace (a veth away) serves HTTP; the container's request arrives
# from the host side's address (masqueraded)
upstream
mkdir -p "$T/www" && echo upstream page >"$T/www/index.html"
nsenter -t "$up" -n python3 -m http.server 8000 --bind 192.0.2.2 --directory "$T/www" >"$T/up.log" 2>&1 &
upsrv=$!
wait_until 10 sh -c "nsenter -t $up -n sh -c 'ss -ltn | grep -q :8000'"
expect "a container fetches from upstream through NAT" "upstream page" \
	"$("$COVE" run --rm busybox timeout 10 wget -q -O - http://192.0.2.2:8000/ 2>&1)"
expect "upstream saw the host side's address" "1" "$(grep -c '^192.0.2.1 ' "$T/up.log")"

# published ports: on the host's loopback, on every address (reached from upstream), and one
# the kernel picks; cove port and ls show them; a port in use fails before anything starts
"$COVE" run -d --name pub -p 127.0.0.1:8080:80 -p 8081:80 -p 80 busybox sh -c \
	'mkdir /www; echo published >/www/index.html; exec httpd -f -p 80 -h /www' >/dev/null 2>"$T/err" ||
	not_ok "run -d -p" "$(cat "$T/err")"
wait_until 20 sh -c 'curl -s --max-time 2 http://127.0.0.1:8080/ | grep -q published' # httpd's start
expect "-p 127.0.0.1:8080:80: the host's loopback reaches it" "published" \
	"$(curl -s --max-time 10 http://127.0.0.1:8080/ 2>&1)"
expect "-p 8081:80: another machine reaches it" "published" \
	"$(nsenter -t "$up" -n curl -s --max-time 10 http://192.0.2.1:8081/ 2>&1)"
rport=$("$COVE" port pub | awk '$3 ~ /^0.0.0.0:/ && $3 != "0.0.0.0:8081" { sub(".*:", "", $3); print $3 }')
expect "-p 80: a port the kernel picked, and it works" "published" \
	"$(curl -s --max-time 10 "http://127.0.0.1:${rport:-1}/" 2>&1)"
expect "cove port lists them" "80/tcp -> 127.0.0.1:8080
80/tcp -> 0.0.0.0:8081
80/tcp -> 0.0.0.0:$rport" "$("$COVE" port pub 2>&1)"
expect "ls has a PORTS column" "127.0.0.1:8080->80/tcp, 0.0.0.0:8081->80/tcp, 0.0.0.0:$rport->80/tcp" \
	"$("$COVE" ls --format json | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["Ports"])')"
one_line_125 "a port in use: one line, before it starts" "port 8080 is already in use" \
	"$COVE" run --rm --name again -p 127.0.0.1:8080:80 busybox true
expect "and nothing is left of it" "" "$("$COVE" ls -aq --filter name=again)"
one_line_125 "a malformed -p" "invalid -p '80:99999'" "$COVE" run --rm -p 80:99999 busybox true
"$COVE" rm -f pub >/dev/null 2>&1
kill "$upsrv" "$up" 2>/dev/null

# --network none: loopback only; a bad network name: one line, nothing made
expect "--network none: no interface but lo (and the kernel's idle sit0)" "lo" \
	"$("$COVE" run --rm --network none busybox sh -c "ip -o link | awk -F': ' '{print \$2}' | grep -v '^sit0@'" 2>&1)"
one_line_125 "an unknown network" "no such network: 'nope'" "$COVE" run --rm --network nope busybox true

# a host without a usable /dev/net/tun (here: /dev/null bound over it, in a mount namespace):
# the default network falls back to loopback with one notice; asking for it fails in one line
out=$(unshare -m sh -c "mount --bind /dev/null /dev/net/tun && '$COVE' run --rm busybox echo ran" 2>"$T/err")
expect "no tun: the container runs, with one notice" "ran 1" "$out $(grep -c 'no network for this container' "$T/err")"
unshare -m sh -c "mount --bind /dev/null /dev/net/tun && '$COVE' run --rm --network cove busybox true" >/dev/null 2>"$T/err"
expect "no tun, --network cove: one line, 125" "125 1" "$? $(wc -l <"$T/err")"

# ten at once: distinct addresses
for i in $(seq 10); do "$COVE" run -d --name m$i --memory 128m busybox sleep 300 >/dev/null 2>&1 & done
wait
addrs=$(for i in $(seq 10); do addr_of m$i; done | sort -u | grep -c .)
expect "ten containers started at once have ten addresses" "10" "$addrs"

# a supervisor SIGKILLed: its tap goes with its QEMU, its lease is free again
pid=$(ctr_pid m1)
kill -9 "$pid"
wait_until 10 sh -c "! ip -o link | grep -q 'cv$(inspect_field m1 Id | cut -c1-12)'"
expect "a killed supervisor's tap is gone" "" "$(ip -o link | grep "cv$(inspect_field m1 Id | cut -c1-12)")"
"$COVE" rm -f --all >/dev/null 2>&1
expect "rm -f of them all: no tap left" "" "$(ip -o link | grep -o 'cv[0-9a-f]*')"
"$COVE" run --rm busybox true >/dev/null 2>&1
expect "and no lease is left" "" "$(cat "$COVE_ROOT/networks/cove.leases" 2>&1)"
# (a --rm container's tap goes just after its run returns)
wait_until 5 sh -c "! ip -o link | grep -q 'cv[0-9a-f]'"
expect "a --rm container leaves no tap" "" "$(ip -o link | grep -o 'cv[0-9a-f]*')"
