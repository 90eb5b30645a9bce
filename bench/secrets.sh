#!/usr/bin/env bash
# bench/secrets.sh - the secrets scenarios next to the h2o ceiling, in one run:
#   1. a bare h2o hello handler (HELLO_BIN, the harness's bench/hello)
#   2. GET of a 1 KB secret, SV_KEYS secrets stored, keys at random
#   3. PUT of a 1 KB secret at 64 clients (durable group commit)
# Usage: bench/secrets.sh BUILD_DIR [HELLO_BIN]   (BUILD_DIR: a plain build, not sanitizers)
# Environment: DURATION (default 20s), SV_KEYS (default 100000), PORT (default 18390),
# SEED_DURATION (default 30s: wrk runs that long even when every key is written),
# SV_UNAUDITED (default true: SCAIVAULT_BENCH_UNAUDITED, the figures "before audit";
# false measures with the audit log).
# Prints one line per scenario (requests/s, p50/p99 latency) and the GET/ceiling ratio.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: bench/secrets.sh BUILD_DIR [HELLO_BIN]}
hello=${2:-$build/bench/hello}
duration=${DURATION:-20s}
port=${PORT:-18390}
hello_port=$((port + 1))
export SV_KEYS=${SV_KEYS:-100000}
export SV_TOKEN=bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
export SV_TENANT=bench
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

SCAIVAULT_DATA_DIR=$work/data SCAIVAULT_LISTEN=127.0.0.1:$port BOOTSTRAP_TOKEN=$SV_TOKEN \
    RATE_LIMIT_READ=1000000000/min RATE_LIMIT_WRITE=1000000000/min SCAIVAULT_MAP_SIZE=2GiB \
    SCAIVAULT_TEST_FAULTS=true SCAIVAULT_BENCH_UNAUDITED=${SV_UNAUDITED:-true} \
    "$build/scaivault" server >"$work/server.log" 2>&1 &
server_pid=$!
pids+=($server_pid)
"$hello" "$hello_port" 2 >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/v1/health" >/dev/null && break
    sleep 0.1
done

alive() {
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "the server died; its log:" >&2
        tail -20 "$work/server.log" >&2
        exit 1
    fi
}

summary() { # name, wrk output
    local rps p50 p99
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$2")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$2")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$2")
    printf '%-28s %10s req/s   p50 %-9s p99 %-9s %s\n' "$1" "$rps" "$p50" "$p99" \
        "$(grep -E '^(non-200|failed)' <<<"$2" | tr '\n' ' ')"
    echo "$rps"
}

url=http://127.0.0.1:$port
echo "seeding $SV_KEYS secrets of 1 KB..."
out=$(wrk -t2 -c64 -d"${SEED_DURATION:-30s}" -s "$here/lua/secrets_seed.lua" "$url" -- 2)
alive
grep '^failed' <<<"$out"
last=$(printf 'bench/k%07d' $((SV_KEYS - 1)))
if ! curl -sf -H "Authorization: Bearer $SV_TOKEN" -H "X-ScaiVault-Tenant: $SV_TENANT" "$url/v1/secrets/$last" >/dev/null; then
    echo "seeding did not finish: raise SEED_DURATION" >&2
    exit 1
fi

out=$(wrk -t2 -c64 -d"$duration" --latency -s "$here/lua/hello.lua" "http://127.0.0.1:$hello_port")
summary "h2o hello (ceiling)" "$out" | head -1
hello_rps=$(summary "" "$out" | tail -1)
out=$(wrk -t2 -c64 -d"$duration" --latency -s "$here/lua/secrets_get.lua" "$url")
alive
summary "GET 1 KB secret" "$out" | head -1
get_rps=$(summary "" "$out" | tail -1)
out=$(wrk -t2 -c64 -d"$duration" --latency -s "$here/lua/secrets_put.lua" "$url")
alive
summary "PUT 1 KB secret" "$out" | head -1
awk -v g="$get_rps" -v h="$hello_rps" 'BEGIN { printf "GET / ceiling: %.0f%% (goal >= 60%%)\n", 100 * g / h }'
