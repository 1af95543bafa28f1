#!/bin/sh
# Replica memory after a long run (not a test; figures only): n replicas on
# 127.0.0.1 (ports 27100+), one client committing OPS operations with T
# threads over K keys, then each replica's resident set (VmRSS) and peak
# (VmHWM) from /proc, and its log window (first..last op held).
#   native/scripts/memory.sh [ops=1000000] [replicas=3] [threads=8] [keys=1000]
# The documented bound (README "Replica memory"): RSS stays flat after warm-up
# because the log drops ops every replica committed; the store holds one value
# per key; the client table is capped (--max-clients).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
ops=${1:-1000000}; n=${2:-3}; threads=${3:-8}; keys=${4:-1000}
make -s -C "$here" all
tmp=$(mktemp -d)
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM
f=$(( (n - 1) / 2 ))
{ echo "f $f"; i=0; while [ $i -lt "$n" ]; do echo "replica 127.0.0.1:$((27100 + i))"; i=$((i + 1)); done; } > "$tmp/config"
i=0
while [ $i -lt "$n" ]; do
  "$here/build/replica" -c "$tmp/config" -i $i --log-level warn 2> "$tmp/r$i.log" &
  pids="$pids $!"
  i=$((i + 1))
done
tries=0
until [ "$(ss -Hulpn 2>/dev/null | grep -c '127.0.0.1:271')" -ge "$n" ]; do
  tries=$((tries + 1)); [ $tries -lt 500 ] || { echo "replicas did not start" >&2; exit 1; }
  sleep 0.01
done
rss() { awk '/^(VmRSS|VmHWM)/ { printf "%s %s ", $1, $2 }' "/proc/$1/status"; }
i=0; for p in $pids; do echo "replica$i before: $(rss "$p")"; i=$((i + 1)); done
t0=$(date +%s)
"$here/build/client" -c "$tmp/config" -n "$ops" -w 0 -t "$threads" --keys "$keys" | tail -1 > "$tmp/client.json"
t1=$(date +%s)
i=0; for p in $pids; do echo "replica$i after $ops ops: $(rss "$p")"; i=$((i + 1)); done
for p in $pids; do kill -TERM "$p"; done
for p in $pids; do while kill -0 "$p" 2>/dev/null; do sleep 0.05; done; done
pids=""
echo "client: $(cat "$tmp/client.json")"
echo "wall: $((t1 - t0)) s"
