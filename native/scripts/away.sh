#!/bin/sh
# A follower away for AWAY seconds under load, then back (not a test; figures
# only): 3 replicas on 127.0.0.1 (ports 27200+), one client writing for the
# whole run; replica 2 is stopped (SIGSTOP) after 5 s and resumed AWAY s
# later. Prints every replica's VmRSS every 5 s, how replica 2 caught up (a
# snapshot once its ops were dropped from the others' logs: past the hold of
# 16,384 committed ops, or the 10 s grace) and each log's window at the end.
# The bound it shows: while a follower is away the others keep at most the
# hold's worth of ops, then drop them; after it returns everyone's log
# shrinks back to the window and the ring gives its memory back.
#   native/scripts/away.sh [away=30] [threads=8]
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
away=${1:-30}; threads=${2:-8}
make -s -C "$here" all
tmp=$(mktemp -d)
pids=""
cleanup() { for p in $pids $client; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
client=""
trap cleanup EXIT INT TERM
printf 'f 1\nreplica 127.0.0.1:27200\nreplica 127.0.0.1:27201\nreplica 127.0.0.1:27202\n' > "$tmp/config"
for i in 0 1 2; do
  "$here/build/replica" -c "$tmp/config" -i $i 2> "$tmp/r$i.log" &
  pids="$pids $!"
done
tries=0
until grep -q 'ready on' "$tmp/r0.log" "$tmp/r1.log" "$tmp/r2.log" 2>/dev/null && [ "$(grep -l 'view 0 normal' "$tmp"/r*.log | wc -l)" -ge 3 ]; do
  tries=$((tries + 1)); [ $tries -lt 1000 ] || { echo "replicas did not form view 0" >&2; exit 1; }
  sleep 0.01
done
total=$((away + 15))
"$here/build/client" -c "$tmp/config" -d "$total" -w 0 -t "$threads" --keys 1000 > "$tmp/client.json" 2> "$tmp/client.log" &
client=$!
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
set -- $pids
t=0
while [ $t -le "$total" ] && kill -0 "$client" 2>/dev/null; do
  [ $t -eq 5 ] && { kill -STOP "$3"; echo "t=${t}s: replica2 stopped"; }
  [ $t -eq $((5 + away)) ] && { kill -CONT "$3"; echo "t=${t}s: replica2 resumed"; }
  echo "t=${t}s RSS kB: replica0 $(rss "$1") replica1 $(rss "$2") replica2 $(rss "$3")"
  # pacing of the figures, not synchronisation: the client runs on its own clock
  sleep 5
  t=$((t + 5))
done
wait "$client" || true
client=""
for p in $pids; do kill -TERM "$p"; done
for p in $pids; do while kill -0 "$p" 2>/dev/null; do sleep 0.05; done; done
pids=""
echo "client: $(tail -1 "$tmp/client.json")"
echo "replica2 caught up: $(grep -E 'snapshot: installed|asks for ops after' "$tmp"/r*.log | sed 's/^[^ ]* [^ ]* //' | head -3)"
for i in 0 1 2; do echo "replica$i exit: $(grep 'stats:' "$tmp/r$i.log" | sed 's/.*status /status /')"; done
