#!/bin/sh
# Loopback throughput/latency of the release build (not a test; figures only).
#   native/scripts/bench-loopback.sh [seconds=5] [replica counts="3 5 7"] [threads="1 8"] [extra replica flags...]
# Starts n replicas on 127.0.0.1 (ports 27000+), runs the closed-loop client
# with 1 s warm-up, prints one line per (n, threads), stops the replicas by PID.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-5}; counts=${2:-"3 5 7"}; threads=${3:-"1 8"}
shift $(( $# < 3 ? $# : 3 ))
make -s -C "$here" all
tmp=$(mktemp -d)
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM
printf '%-9s %-8s %12s %10s %10s %8s\n' replicas threads ops/s p50_us p99_us timeouts
for n in $counts; do
  f=$(( (n - 1) / 2 ))
  { echo "f $f"; i=0; while [ $i -lt "$n" ]; do echo "replica 127.0.0.1:$((27000 + i))"; i=$((i + 1)); done; } > "$tmp/config"
  for t in $threads; do
    pids=""
    i=0
    while [ $i -lt "$n" ]; do
      "$here/build/replica" -c "$tmp/config" -i $i --log-level warn "$@" 2> "$tmp/r$i.log" &
      pids="$pids $!"
      i=$((i + 1))
    done
    # wait until every replica has bound its port (no fixed sleep)
    tries=0
    until [ "$(ss -Hulpn 2>/dev/null | grep -c '127.0.0.1:270')" -ge "$n" ]; do
      tries=$((tries + 1)); [ $tries -lt 500 ] || { echo "replicas did not start" >&2; exit 1; }
      sleep 0.01
    done
    json=$("$here/build/client" -c "$tmp/config" -d "$secs" -w 1 -t "$t" | tail -n 1)
    echo "$json" | python3 -c 'import json,sys; j=json.loads(sys.stdin.read()); print("%-9s %-8s %12.0f %10.0f %10.0f %8d" % (sys.argv[1], sys.argv[2], j["throughput_ops"], j["latency_us"]["p50"], j["latency_us"]["p99"], j["timeouts"]))' "$n" "$t"
    for p in $pids; do kill "$p"; done
    for p in $pids; do wait "$p" || true; done
    pids=""
  done
done
