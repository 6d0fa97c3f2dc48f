#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Start a test registry on a free 127.0.0.1 port and wait until /v2/ answers.
#
#   tests/registry/start.sh KIND DIR     KIND: plain | basic | token | tls | bad
#
#   plain  docker-registry (distribution 2.8), anonymous, plain HTTP
#   basic  the same with htpasswd (bcrypt) basic auth
#   token  the same with bearer tokens from tests/registry/token_server.py (RS256 JWTs whose
#          x5c certificate is the registry's rootcertbundle)
#   tls    HTTPS with a certificate for 127.0.0.1 signed by a fresh test CA
#   bad    tests/registry/badserver.py, a misbehaving HTTP server (see that file)
#
# DIR (created if missing; plain characters only) receives the config, the data, the logs, the
# pid files and DIR/env, a sourceable file:
#   REGISTRY=127.0.0.1:PORT  REGISTRY_KIND  REGISTRY_URL  [REGISTRY_USER REGISTRY_PASSWORD]
#   [REGISTRY_CA REGISTRY_CERTS_DIR (DIR/certs.d, holding 127.0.0.1:PORT/ca.crt)]
#   [TOKEN_REALM TOKEN_LOG]  [STORAGE=127.0.0.1:PORT2 (bad: the redirect target)]
# tests/registry/stop.sh DIR ends exactly the processes this started.
set -eu

die() {
	echo "start.sh: $*" >&2
	exit 1
}

[ $# -eq 2 ] || die "usage: start.sh plain|basic|token|tls|bad DIR"
KIND=$1
DIR=$2
HERE=$(cd "$(dirname "$0")" && pwd)
case "$KIND" in plain | basic | token | tls | bad) ;; *) die "unknown kind '$KIND'" ;; esac
case "$DIR" in *[!A-Za-z0-9._/+-]* | "") die "DIR '$DIR' must be a plain path" ;; esac
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
[ ! -e "$DIR/registry.pid" ] || die "$DIR/registry.pid exists: stop that registry first"
# The system python starts in 0.1 s; a pyenv shim on PATH can take over a second.
PYTHON=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
[ "$KIND" = bad ] || command -v docker-registry >/dev/null || die "docker-registry is not installed"

free_port() {
	"$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

random_word() {
	od -An -N12 -tx1 /dev/urandom | tr -d ' \n'
}

# wait_up URL PIDFILE LOG [curl args]: until URL answers 200 or 401 (10 s).
wait_up() {
	url=$1 pidfile=$2 log=$3
	shift 3
	i=0
	while [ $i -lt 100 ]; do
		code=$(curl -s -o /dev/null -w '%{http_code}' --noproxy '*' --max-time 1 "$@" "$url" || true)
		case "$code" in 200 | 401) return 0 ;; esac
		kill -0 "$(cat "$pidfile")" 2>/dev/null || {
			rm -f "$pidfile"
			sed 's/^/  /' "$log" >&2
			return 1
		}
		sleep 0.1
		i=$((i + 1))
	done
	echo "start.sh: $url did not answer within 10 s" >&2
	return 1
}

USER_NAME=cove
PASSWORD=$(random_word)
: >"$DIR/env.tmp"

if [ "$KIND" = bad ]; then
	rm -f "$DIR/port"
	"$PYTHON" "$HERE/badserver.py" "$DIR" </dev/null >"$DIR/badserver.log" 2>&1 &
	echo $! >"$DIR/registry.pid"
	i=0
	while [ ! -s "$DIR/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	[ -s "$DIR/port" ] || { cat "$DIR/badserver.log" >&2; die "badserver did not start"; }
	PORT=$(cat "$DIR/port")
	wait_up "http://127.0.0.1:$PORT/v2/" "$DIR/registry.pid" "$DIR/badserver.log" || die "badserver did not start"
	printf 'REGISTRY=127.0.0.1:%s\nREGISTRY_KIND=bad\nREGISTRY_URL=http://127.0.0.1:%s\nSTORAGE=127.0.0.1:%s\n' \
		"$PORT" "$PORT" "$(cat "$DIR/port2")" >"$DIR/env"
	exit 0
fi

SCHEME=http
AUTH=""
TLS=""
CURL_ARGS=""
case "$KIND" in
basic)
	htpasswd -Bbn "$USER_NAME" "$PASSWORD" >"$DIR/htpasswd" 2>/dev/null
	AUTH="auth:
  htpasswd:
    realm: cove-test
    path: $DIR/htpasswd"
	printf 'REGISTRY_USER=%s\nREGISTRY_PASSWORD=%s\n' "$USER_NAME" "$PASSWORD" >>"$DIR/env.tmp"
	;;
token)
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$DIR/token.key" -out "$DIR/token.crt" \
		-days 2 -subj /CN=cove-test-token-issuer 2>/dev/null
	rm -f "$DIR/token.port"
	: >"$DIR/token.log"
	"$PYTHON" "$HERE/token_server.py" "$DIR" "$USER_NAME" "$PASSWORD" </dev/null \
		>"$DIR/token_server.log" 2>&1 &
	echo $! >"$DIR/token.pid"
	i=0
	while [ ! -s "$DIR/token.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	[ -s "$DIR/token.port" ] || { cat "$DIR/token_server.log" >&2; die "token server did not start"; }
	TPORT=$(cat "$DIR/token.port")
	AUTH="auth:
  token:
    realm: http://127.0.0.1:$TPORT/token
    service: cove-test-registry
    issuer: cove-test-issuer
    rootcertbundle: $DIR/token.crt"
	printf 'REGISTRY_USER=%s\nREGISTRY_PASSWORD=%s\nTOKEN_REALM=http://127.0.0.1:%s/token\nTOKEN_LOG=%s\n' \
		"$USER_NAME" "$PASSWORD" "$TPORT" "$DIR/token.log" >>"$DIR/env.tmp"
	;;
tls)
	SCHEME=https
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$DIR/ca.key" -out "$DIR/ca.crt" -days 2 -subj /CN=cove-test-ca \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$DIR/server.key" -out "$DIR/server.csr" -subj /CN=127.0.0.1 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >"$DIR/server.ext"
	openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial \
		-out "$DIR/server.crt" -days 2 -extfile "$DIR/server.ext" 2>/dev/null
	TLS="  tls:
    certificate: $DIR/server.crt
    key: $DIR/server.key"
	CURL_ARGS="--cacert $DIR/ca.crt"
	;;
esac

# The port is free when chosen but may be taken before the registry binds it: try 3 times.
attempt=0
while :; do
	attempt=$((attempt + 1))
	PORT=$(free_port)
	cat >"$DIR/config.yml" <<EOC
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $DIR/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$PORT
  secret: $(random_word)
$TLS
$AUTH
EOC
	docker-registry serve "$DIR/config.yml" </dev/null >"$DIR/registry.log" 2>&1 &
	echo $! >"$DIR/registry.pid"
	# shellcheck disable=SC2086
	if wait_up "$SCHEME://127.0.0.1:$PORT/v2/" "$DIR/registry.pid" "$DIR/registry.log" $CURL_ARGS; then
		break
	fi
	if [ -e "$DIR/registry.pid" ]; then # still running but not answering: give up
		"$HERE/stop.sh" "$DIR"
		die "registry on 127.0.0.1:$PORT did not come up"
	fi
	[ $attempt -lt 3 ] || { "$HERE/stop.sh" "$DIR"; die "registry did not start"; }
done

if [ "$KIND" = tls ]; then
	mkdir -p "$DIR/certs.d/127.0.0.1:$PORT"
	cp "$DIR/ca.crt" "$DIR/certs.d/127.0.0.1:$PORT/ca.crt"
	printf 'REGISTRY_CA=%s\nREGISTRY_CERTS_DIR=%s\n' "$DIR/ca.crt" "$DIR/certs.d" >>"$DIR/env.tmp"
fi
{
	printf 'REGISTRY=127.0.0.1:%s\nREGISTRY_KIND=%s\nREGISTRY_URL=%s://127.0.0.1:%s\n' \
		"$PORT" "$KIND" "$SCHEME" "$PORT"
	cat "$DIR/env.tmp"
} >"$DIR/env"
rm -f "$DIR/env.tmp"
