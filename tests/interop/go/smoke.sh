#!/usr/bin/env bash
# Loopback go <-> go smoke run of the go-libp2p interop node: a go relay, a
# go peer that reserves on it, and a go peer that dials the first through the
# relay and must get a direct connection (exit 0). Checks that every stdout
# line is one JSON object with exactly the fields of its NodeEvent variant.
# Traffic stays on 127.0.0.1. Exits non-zero on any failure.
#
#   tests/interop/go/smoke.sh            # builds ./punchport-go-node first
#   KEEP=1 tests/interop/go/smoke.sh     # keep the work directory
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="$here/punchport-go-node"
(cd "$here" && go build -o punchport-go-node .)

work="$(mktemp -d -t punchport-go-smoke.XXXXXX)"
pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [[ -z "${KEEP:-}" ]]; then rm -rf "$work"; else echo "kept $work" >&2; fi
}
trap cleanup EXIT

fail() {
	echo "smoke: FAIL: $*" >&2
	for f in "$work"/*.out; do
		echo "--- $(basename "$f")" >&2
		cat "$f" >&2
	done
	echo "--- (stderr logs in $work unless KEEP is unset)" >&2
	exit 1
}

# Ports: somewhere in 20000-44999, away from the default punch range.
base=$((20000 + (RANDOM % 2500) * 10))
relay_port=$base
punch_range="$((base + 3))-$((base + 9))"

# wait_for FILE EVENT: the first line of FILE whose "event" is EVENT.
wait_for() {
	local file=$1 event=$2
	for _ in $(seq 1 100); do
		if line=$(grep -m1 "\"event\":\"$event\"" "$file" 2>/dev/null); then
			echo "$line"
			return 0
		fi
		sleep 0.1
	done
	return 1
}

field() { # field JSON NAME
	sed -n "s/.*\"$2\":\"\\([^\"]*\\)\".*/\\1/p" <<<"$1"
}

"$bin" relay --listen "/ip4/127.0.0.1/udp/$relay_port/quic-v1" --secret-key-seed 1 --no-rate-limits \
	>"$work/relay.out" 2>"$work/relay.err" &
pids+=($!)
wait_for "$work/relay.out" ready >/dev/null || fail "the relay printed no ready line"
relay_addr=$(field "$(wait_for "$work/relay.out" listening)" address)
[[ "$relay_addr" == /ip4/127.0.0.1/udp/$relay_port/quic-v1/p2p/12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5 ]] ||
	fail "unexpected relay address $relay_addr (seed 1 must give the Rust relay's peer id)"

"$bin" peer --relay "$relay_addr" --listen "/ip4/127.0.0.1/udp/$((base + 1))/quic-v1" \
	--punch-range "$punch_range" --secret-key-seed 2 >"$work/a.out" 2>"$work/a.err" &
pids+=($!)
ready=$(wait_for "$work/a.out" ready) || fail "the reserving peer printed no ready line"
a_id=$(field "$ready" peer_id)

set +e
timeout 60 "$bin" peer --relay "$relay_addr" --listen "/ip4/127.0.0.1/udp/$((base + 2))/quic-v1" \
	--punch-range "$punch_range" --dial "$a_id" --timeout-secs 20 >"$work/b.out" 2>"$work/b.err"
rc=$?
set -e
sleep 0.5

[[ $rc -eq 0 ]] || fail "the dialing peer exited with $rc, not 0"
b_direct=$(grep -m1 '"event":"direct"' "$work/b.out") || fail "the dialing peer printed no direct line"
[[ "$(field "$b_direct" peer)" == "$a_id" ]] || fail "direct line names another peer: $b_direct"
grep -q '"event":"relayed"' "$work/b.out" || fail "the dialing peer printed no relayed line"
grep -q '"event":"direct"' "$work/a.out" || fail "the reserving peer printed no direct line"
if grep -q '"event":"\(punch_failed\|timeout\)"' "$work/b.out"; then
	fail "the dialing peer reported a failure"
fi

# Every line: one JSON object with exactly its variant's fields.
if command -v python3 >/dev/null; then
	python3 - "$work"/*.out <<'EOF' || fail "a stdout line does not match the NodeEvent schema"
import json, sys
fields = {
    "listening": {"address", "punch_socket"},
    "ready": {"peer_id"},
    "relayed": {"peer"},
    "connection": {"peer", "endpoint", "remote_address", "local_port"},
    "direct": {"peer", "elapsed_ms", "remote_address", "local_port", "attempts"},
    "punch_failed": {"peer", "error", "attempts"},
    "reservation_failed": {"relay", "error"},
    "disconnected": {"peer", "relayed", "cause"},
    "timeout": set(),
}
bad = 0
for path in sys.argv[1:]:
    for n, line in enumerate(open(path), 1):
        try:
            obj = json.loads(line)
            event = obj.pop("event")
            ok = set(obj) == fields[event]
            if event in ("connection", "direct"):
                ok = ok and obj["endpoint" if event == "connection" else "peer"] is not None
                ok = ok and (obj["local_port"] is None or 0 < obj["local_port"] < 65536)
        except Exception as e:  # noqa: BLE001
            ok = False
        if not ok:
            bad += 1
            print(f"{path}:{n}: {line.rstrip()}", file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
fi

echo "smoke: OK: go relay + go peers on 127.0.0.1: $b_direct"
