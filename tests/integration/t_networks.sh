#!/bin/bash
# User-created networks, as root, inside a network namespace of this test's own: containers on
# `cove network create app` find each other by name and alias through the network's DNS
# server; another network cannot reach them; --internal has no way out; --ip, --mac-address,
# --dns, --dns-search and --add-host shape what the container sees; 20 containers at once get
# 20 addresses, and removing or killing them leaves no tap, lease, DNS entry or dnsmasq; bad
# input is one line and exit 125 with nothing made. And UDP ports and port ranges, published on
# a network and on QEMU's user networking.
. "$(dirname "$0")/lib.sh" # (which moves this file into a network namespace of its own)
registry_with_images

addr_of() { inspect_field "$1" NetworkSettings.IPAddress; }
dnsmasq_of() { ps -eo stat=,args= | awk -v f="$COVE_ROOT/networks/$1.dns.pid" '$1 !~ /^Z/ && index($0, "--pid-file=" f)' | grep -c .; }
web() { # NAME NETWORK [flags...]: an httpd that says its name, once it answers
	local n=$1 net=$2
	shift 2
	"$COVE" run -d --name "$n" --network "$net" "$@" busybox sh -c \
		"mkdir /www; echo page of $n >/www/index.html; exec httpd -f -p 80 -h /www" >/dev/null 2>"$T/err" ||
		not_ok "run -d $n" "$(cat "$T/err")"
	# run -d returns once sh runs; httpd listens a moment later
	wait_until 20 "$COVE" exec "$n" wget -qO /dev/null http://127.0.0.1/
}

"$COVE" network create app >"$T/id" 2>"$T/err"
expect "network create prints the new network's ID" "0 64" "$? $(tr -d '\n' <"$T/id" | wc -c)" "$(cat "$T/err")"
"$COVE" network create --subnet 10.77.0.0/24 --label team=b other >/dev/null 2>"$T/err" ||
	not_ok "network create --subnet" "$(cat "$T/err")"
"$COVE" network create --internal --subnet 10.78.0.0/24 --gateway 10.78.0.254 locked >/dev/null 2>"$T/err" ||
	not_ok "network create --internal --gateway" "$(cat "$T/err")"
expect "network ls lists them, the default first" "cove app locked other" "$("$COVE" network ls -q | tr '\n' ' ' | sed 's/ $//')"
expect "network inspect: docker's shape" "10.77.0.0/24 10.77.0.1 b False" \
	"$("$COVE" network inspect other | python3 -c 'import json,sys; n=json.load(sys.stdin)[0]; c=n["IPAM"]["Config"][0]; print(c["Subnet"], c["Gateway"], n["Labels"]["team"], n["Internal"])')"

# two containers on app: each reaches the other by name and by alias
web a1 app --network-alias alpha
web a2 app --net-alias beta
for pair in "a1 a2 beta" "a2 a1 alpha"; do
	set -- $pair
	expect "$1 pings $2 by name" "0" "$("$COVE" exec "$1" ping -c1 -W5 "$2" >/dev/null 2>&1; echo $?)"
	expect "$1 fetches from $2 by name" "page of $2" "$("$COVE" exec "$1" timeout 10 wget -qO- "http://$2/" 2>&1)"
	expect "$1 fetches from $2 by its alias $3" "page of $2" "$("$COVE" exec "$1" timeout 10 wget -qO- "http://$3/" 2>&1)"
done
expect "the DNS server answers with the address inspect shows" "$(addr_of a2)" \
	"$("$COVE" exec a1 nslookup a2 2>/dev/null | awk '/^Address/ && !/:53/ {print $2}' | tail -1)"
expect "resolv.conf names the network's gateway" "nameserver 10.89.1.1" \
	"$("$COVE" exec a1 grep nameserver /etc/resolv.conf 2>&1)"
expect "inspect lists the aliases" "['alpha']" "$(inspect_field a1 NetworkSettings.Networks.app.Aliases)"
expect "network inspect lists both containers" "a1 a2" \
	"$("$COVE" network inspect app | python3 -c 'import json,sys; print(*sorted(c["Name"] for c in json.load(sys.stdin)[0]["Containers"].values()))')"

# another network, and the default one, cannot reach them
ip1=$(addr_of a1)
expect "a container on another network cannot reach them" "no" \
	"$("$COVE" run --rm --network other busybox sh -c "timeout 5 wget -qO- http://$ip1/ >/dev/null 2>&1 && echo yes || echo no" 2>&1)"
expect "nor one on the default network" "no" \
	"$("$COVE" run --rm busybox sh -c "timeout 5 wget -qO- http://$ip1/ >/dev/null 2>&1 && echo yes || echo no" 2>&1)"
expect "nor does it know their names" "no" \
	"$("$COVE" run --rm --network other busybox sh -c 'nslookup a1 >/dev/null 2>&1 && echo yes || echo no' 2>&1)"

# the host, as host.cove.internal, and an upstream machine beyond NAT; --internal reaches
# neither beyond its gateway
mkdir -p "$T/www" && echo host page >"$T/www/index.html"
"$PYTHON" -m http.server 8000 --bind 0.0.0.0 --directory "$T/www" >"$T/host.log" 2>&1 &
hostsrv=$!
upstream
nsenter -t "$up" -n python3 -m http.server 8000 --bind 192.0.2.2 --directory "$T/www" >"$T/up.log" 2>&1 &
upsrv=$!
wait_until 10 sh -c "ss -ltn | grep -q :8000 && nsenter -t $up -n sh -c 'ss -ltn | grep -q :8000'"
expect "app reaches the host as host.cove.internal" "host page" \
	"$("$COVE" exec a1 timeout 10 wget -qO- http://host.cove.internal:8000/ 2>&1)"
expect "app reaches upstream through NAT" "host page" \
	"$("$COVE" exec a1 timeout 10 wget -qO- http://192.0.2.2:8000/ 2>&1)"
expect "--internal cannot reach upstream" "no" \
	"$("$COVE" run --rm --network locked busybox sh -c 'timeout 5 wget -qO- http://192.0.2.2:8000/ >/dev/null 2>&1 && echo yes || echo no' 2>&1)"
expect "--internal: its gateway is the one asked for" "10.78.0.254" \
	"$("$COVE" run --rm --network locked busybox sh -c "ip route | awk '/^default/ {print \$3}'" 2>&1)"
kill "$upsrv" "$up" "$hostsrv" 2>/dev/null

# --ip, --mac-address, --dns, --dns-search, --add-host
out=$("$COVE" run --rm --network other --ip 10.77.0.50 --mac-address 02:42:ac:11:00:09 \
	--dns 192.0.2.53 --dns-search corp.example --dns-option ndots:2 --dns-opt edns0 \
	--add-host db:192.0.2.7 --add-host h:host-gateway \
	--hostname box busybox sh -c "ip -4 -o addr show eth0 | awk '{print \$4}'; cat /sys/class/net/eth0/address; grep -v '^#' /etc/resolv.conf; grep -E 'db|	h$|box' /etc/hosts" 2>&1)
expect "--ip --mac-address --dns --dns-search --dns-option --add-host --hostname" "10.77.0.50/24
02:42:ac:11:00:09
nameserver 192.0.2.53
search corp.example
options ndots:2 edns0
10.77.0.50	box
192.0.2.7	db
10.77.0.1	h" "$out"
"$COVE" run -d --name fixed --network other --ip 10.77.0.60 busybox sleep 300 >/dev/null 2>&1
one_line_125 "--ip taken: one line" "address 10.77.0.60 is already in use on network 'other'" \
	"$COVE" run --rm --name taken --network other --ip 10.77.0.60 busybox true
expect "and nothing is left of it" "" "$("$COVE" ls -aq --filter name=taken)"
one_line_125 "--ip outside the subnet" "--ip 10.9.0.5 is not in network 'other' (10.77.0.0/24)" \
	"$COVE" run --rm --network other --ip 10.9.0.5 busybox true
one_line_125 "--ip the gateway" "is the gateway address" "$COVE" create --network other --ip 10.77.0.1 busybox true
one_line_125 "--ip malformed" "invalid --ip: '10.0.0.300' is not an IPv4 address" "$COVE" run --rm --ip 10.0.0.300 busybox true
one_line_125 "--mac-address multicast" "multicast" "$COVE" run --rm --mac-address 03:00:00:00:00:01 busybox true
one_line_125 "--add-host malformed" "invalid --add-host" "$COVE" run --rm --add-host nocolon busybox true
one_line_125 "--dns-option malformed" "invalid --dns-option: 'ndots 2' is not a resolver option" "$COVE" run --rm --dns-option 'ndots 2' busybox true
one_line_125 "an unknown network" "no such network: 'nope'" "$COVE" run --rm --network nope busybox true
one_line_125 "--network host" "a container has a kernel of its own" "$COVE" create --network host busybox true
expect "none of them made a container" "" "$("$COVE" ls -aq | grep -v "$(inspect_field fixed Id | cut -c1-12)" | grep -v "$(inspect_field a1 Id | cut -c1-12)" | grep -v "$(inspect_field a2 Id | cut -c1-12)")"
one_line_125 "an overlapping --subnet" "--subnet 10.77.0.128/25 overlaps network 'other'" "$COVE" network create --subnet 10.77.0.128/25 x1
one_line_125 "a malformed --subnet" "invalid --subnet '10.1.2.3/24': it has host bits set: did you mean 10.1.2.0/24?" "$COVE" network create --subnet 10.1.2.3/24 x2
one_line_125 "a --gateway outside the subnet" "invalid --gateway '10.5.0.1'" "$COVE" network create --subnet 10.4.0.0/24 --gateway 10.5.0.1 x3
one_line_125 "a network name taken" "network 'app' exists already" "$COVE" network create app
one_line_125 "a bad network name" "invalid network name" "$COVE" network create 'a b'
expect "none of them made a network" "cove app locked other" "$("$COVE" network ls -q | tr '\n' ' ' | sed 's/ $//')"
one_line_125 "rm of a network in use: refused" "network 'other' is used by fixed" "$COVE" network rm other

# several networks: a NIC on each, the default route on the first; connect and disconnect
out=$("$COVE" run --rm --network app --network other busybox sh -c "ip -4 -o addr | awk '\$2 != \"lo\" {print \$2, \$4}' | sed 's|\.[0-9]*/|.X/|'; ip route | awk '/^default/ {print \$5}'; ping -c1 -W5 fixed >/dev/null && echo reaches fixed by name; timeout 10 wget -qO- http://a1/; grep nameserver /etc/resolv.conf" 2>&1)
expect "two --network: eth0 on the first, eth1 on the second, the route on the first, names on both" "eth0 10.89.1.X/24
eth1 10.77.0.X/24
eth0
reaches fixed by name
page of a1
nameserver 127.0.0.11" "$out"
"$COVE" create --name multi --network app busybox sh -c "ip -4 -o addr | awk '\$2 != \"lo\" {print \$2, \$4}' | sed 's|\.[0-9]*/|.X/|'" >/dev/null 2>&1
expect "network connect a stopped container" "0" "$("$COVE" network connect other multi >/dev/null 2>&1; echo $?)"
one_line_125 "network connect twice" "container multi is on network 'other' already" "$COVE" network connect other multi
expect "it starts with a NIC on each" "eth0 10.89.1.X/24
eth1 10.77.0.X/24" "$("$COVE" start -a multi 2>&1)"
one_line_125 "a network one container has second: rm refused" "network 'other' is used by fixed, multi" "$COVE" network rm other
expect "network disconnect its first network: the other is first" "0 eth0 10.77.0.X/24" \
	"$("$COVE" network disconnect app multi 2>&1; echo $?) $("$COVE" start -a multi 2>&1)"
one_line_125 "network disconnect of a network it is not on" "container multi is not on network 'app'" "$COVE" network disconnect app multi
"$COVE" run -d --name busy --network app busybox sleep 300 >/dev/null 2>&1
one_line_125 "network connect a running container: refused" "container busy is running: stop it first" "$COVE" network connect other busy
one_line_125 "--network none with another" "--network none stands alone" "$COVE" run --rm --network none --network app busybox true
one_line_125 "the same network twice" "network 'app' is named twice" "$COVE" run --rm --network app --network app busybox true
"$COVE" rm -f multi busy >/dev/null 2>&1
one_line_125 "rm of the default network: refused" "'cove' is cove's own network" "$COVE" network rm cove
"$COVE" rm -f fixed a1 a2 >/dev/null 2>&1

# twenty at once on one network: twenty addresses
for i in $(seq 20); do "$COVE" run -d --name m$i --network app --memory 96m busybox sleep 600 >/dev/null 2>"$T/m$i.err" & done
wait
addrs=$(for i in $(seq 20); do addr_of m$i; done | sort -u | grep -c .)
expect "twenty containers started at once have twenty addresses" "20" "$addrs" "$(cat "$T"/m*.err | sort | uniq -c | head -3)"
expect "the DNS server knows all twenty" "20" "$(awk '$2 ~ /^m[0-9]+$/' "$COVE_ROOT/networks/app.hosts" | grep -c .)"
expect "one dnsmasq serves the network" "1" "$(dnsmasq_of app)"
expect "it may bind port 53 and set its group, nothing more" "CapEff: 0000000000000440 NoNewPrivs: 1" \
	"$(grep -E '^(CapEff|NoNewPrivs):' "/proc/$(cat "$COVE_ROOT/networks/app.dns.pid")/status" | tr -s '\t\n' '  ' | sed 's/ $//')"
# half removed, half killed (supervisor and QEMU): nothing of any of them is left
for i in $(seq 10); do "$COVE" rm -f m$i >/dev/null 2>&1 & done
for i in $(seq 11 20); do
	p=$(ctr_pid m$i)
	[ -n "$p" ] && [ "$p" -gt 0 ] && kill -9 $(cat /proc/$p/task/*/children 2>/dev/null) "$p"
done
wait
"$COVE" rm -f --all >/dev/null 2>&1
expect "no tap is left" "" "$(ip -o link | grep -o 'cv[0-9a-f]\{12\}')"
expect "no lease is left" "" "$(cat "$COVE_ROOT/networks/app.leases" 2>&1)"
expect "no DNS entry is left" "host.cove.internal" "$(awk '{print $2}' "$COVE_ROOT/networks/app.hosts")"
expect "no dnsmasq is left" "0" "$(dnsmasq_of app)"
# and removing the networks leaves no bridge and no rule of theirs
br=$("$COVE" network inspect app | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Options"]["com.docker.network.bridge.name"])')
expect "network rm" "app
other" "$("$COVE" network rm app other 2>&1)"
expect "network prune removes the unused" "locked" "$("$COVE" network prune 2>&1)"
expect "no bridge of theirs is left" "" "$(ip -o link | grep -o 'cove-[0-9a-f]*')"
expect "no rule of theirs is left" "0" "$(nft list table ip cove 2>/dev/null | grep -c "$br")"
expect "ls: the default network only" "cove" "$("$COVE" network ls -q)"

# UDP (a perl echo server in the Debian image) and a range of TCP ports, on the default network
# and on QEMU's user networking
udp_ask() { # PORT: what the echo server answers on 127.0.0.1:PORT
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
for _ in range(15):
    s.sendto(b"ping", ("127.0.0.1", int(sys.argv[1])))
    try:
        print(s.recvfrom(100)[0].decode()); break
    except socket.timeout:
        pass' "$1" 2>&1
}
echo_srv='perl -MIO::Socket::INET -e '"'"'$s = IO::Socket::INET->new(LocalPort => 7000, Proto => "udp") or die; while (1) { $s->recv($m, 1500); $s->send("echo $m") }'"'"
n=0
for net in cove user; do
	n=$((n + 1))
	"$COVE" run -d --name udp$n --network $net -p 127.0.0.1:710$n:7000/udp "$R/debian" sh -c "$echo_srv" >/dev/null 2>"$T/err" ||
		not_ok "run -d -p .../udp on $net" "$(cat "$T/err")"
	expect "-p 127.0.0.1:710$n:7000/udp on $net: a datagram and its answer" "echo ping" "$(udp_ask 710$n)"
	expect "cove port shows it ($net)" "7000/udp -> 127.0.0.1:710$n" "$("$COVE" port udp$n 2>&1)"
	"$COVE" run -d --name range$n --network $net -p 127.0.0.1:720$((n * 2))-720$((n * 2 + 1)):80-81 busybox sh -c \
		'mkdir /a /b; echo port 80 >/a/index.html; echo port 81 >/b/index.html; httpd -p 80 -h /a; exec httpd -f -p 81 -h /b' >/dev/null 2>"$T/err" ||
		not_ok "run -d with a range on $net" "$(cat "$T/err")"
	wait_until 20 sh -c "curl -s --max-time 2 http://127.0.0.1:720$((n * 2 + 1))/ | grep -q 'port 81'"
	expect "a range of ports on $net: both reach their own" "port 80 port 81" \
		"$(curl -s --max-time 10 http://127.0.0.1:720$((n * 2))/) $(curl -s --max-time 10 http://127.0.0.1:720$((n * 2 + 1))/)"
	"$COVE" rm -f udp$n range$n >/dev/null 2>&1
done
one_line_125 "a range of unequal lengths" "differ in length" "$COVE" run --rm -p 8000-8002:80-81 busybox true
