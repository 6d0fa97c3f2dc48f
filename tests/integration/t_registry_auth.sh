#!/bin/bash
# Registries that want credentials (basic, bearer tokens) or TLS: login, pull, push, logout.
. "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
export HOME="$T/home" DOCKER_CONFIG="$T/home/.docker"
mkdir -p "$HOME"
oci=$("$top/tests/images/build.sh") || { not_ok "test images build"; exit 0; }
regs=""
trap 'for d in $regs; do "$top/tests/registry/stop.sh" "$d" >/dev/null 2>&1; done; cleanup' EXIT

for kind in basic token tls; do
	d="$T/$kind"
	regs="$regs $d"
	if ! "$top/tests/registry/start.sh" $kind "$d" >"$T/start.log" 2>&1; then
		not_ok "$kind registry starts" "$(tail -5 "$T/start.log")"
		continue
	fi
	(
		. "$d/env"
		R=$REGISTRY
		creds=()
		[ -n "${REGISTRY_USER:-}" ] && creds=(--dest-creds "$REGISTRY_USER:$REGISTRY_PASSWORD")
		[ -n "${REGISTRY_CERTS_DIR:-}" ] && creds+=(--dest-cert-dir "$REGISTRY_CERTS_DIR/$R")
		skopeo copy -q --dest-tls-verify=$([ $kind = tls ] && echo true || echo false) "${creds[@]}" \
			"oci:$oci:busybox" "docker://$R/busybox:latest" >"$T/push.log" 2>&1 ||
			{ not_ok "$kind: seed image pushed" "$(cat "$T/push.log")"; exit 0; }
		if [ $kind = tls ]; then
			"$COVE" pull -q "$R/busybox" >/dev/null 2>"$T/err"
			rc=$?
			[ $rc -eq 125 ] && grep -q -i "certificate" "$T/err" && ok "tls: an unknown CA is refused, and said so" || not_ok "tls: an unknown CA is refused, and said so" "rc=$rc $(cat "$T/err")"
			export COVE_CERTS_DIR="$REGISTRY_CERTS_DIR"
			"$COVE" pull -q "$R/busybox" >/dev/null 2>"$T/err" && ok "tls: pull with the registry's CA" || not_ok "tls: pull with the registry's CA" "$(cat "$T/err")"
			expect "tls: run the pulled image" hi "$("$COVE" run --rm "$R/busybox" echo hi 2>&1)"
			exit 0
		fi
		"$COVE" pull -q "$R/busybox" >/dev/null 2>"$T/err"
		rc=$?
		[ $rc -eq 125 ] && grep -q "authentication required" "$T/err" && [ "$(wc -l <"$T/err")" -eq 1 ] && ok "$kind: pull without credentials says so in one line" || not_ok "$kind: pull without credentials says so in one line" "rc=$rc" "$(cat "$T/err")"
		echo wrong | "$COVE" registry login -u "$REGISTRY_USER" --password-stdin "$R" >/dev/null 2>"$T/err"
		rc=$?
		[ $rc -eq 125 ] && [ ! -s "$DOCKER_CONFIG/config.json" -o "$(grep -c "$R" "$DOCKER_CONFIG/config.json" 2>/dev/null)" = 0 ] && ok "$kind: a wrong password is refused and not stored" || not_ok "$kind: a wrong password is refused and not stored" "rc=$rc $(cat "$T/err")"
		out=$(echo "$REGISTRY_PASSWORD" | "$COVE" registry login -u "$REGISTRY_USER" --password-stdin "$R" 2>&1)
		expect "$kind: login" "Login Succeeded" "$out"
		"$COVE" pull -q "$R/busybox" >/dev/null 2>"$T/err" && ok "$kind: pull with the stored credentials" || not_ok "$kind: pull with the stored credentials" "$(cat "$T/err")"
		"$COVE" push -q "$R/busybox" "$R/pushed/copy:v1" >"$T/digest" 2>"$T/err" && ok "$kind: push to another repository" || not_ok "$kind: push to another repository" "$(cat "$T/err")"
		want=$(skopeo inspect --raw --tls-verify=false --creds "$REGISTRY_USER:$REGISTRY_PASSWORD" "docker://$R/busybox:latest" | sha256sum | cut -d' ' -f1)
		got=$(skopeo inspect --raw --tls-verify=false --creds "$REGISTRY_USER:$REGISTRY_PASSWORD" "docker://$R/pushed/copy:v1" | sha256sum | cut -d' ' -f1)
		expect "$kind: the pushed manifest is byte-identical (skopeo)" "$want" "$got"
		expect "$kind: push reports the manifest digest" "sha256:$want" "$(cat "$T/digest")"
		skopeo copy -q --src-tls-verify=false --src-creds "$REGISTRY_USER:$REGISTRY_PASSWORD" "docker://$R/pushed/copy:v1" "oci:$T/copy-$kind:v1" >/dev/null 2>"$T/err" && ok "$kind: skopeo copies the pushed image (blobs verified)" || not_ok "$kind: skopeo copies the pushed image" "$(cat "$T/err")"
		expect "$kind: logout" "Removed login credentials for $R" "$("$COVE" registry logout "$R" 2>&1)"
		"$COVE" pull -q "$R/busybox" >/dev/null 2>&1 && not_ok "$kind: after logout pulls are refused" || ok "$kind: after logout pulls are refused"
	)
done
