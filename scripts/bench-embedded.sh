#!/usr/bin/env bash
# The all-in-one `loggr` daemon's ingest speed, side by side in one run: the zero-config
# pipeline (RELP → BuzzSaw + grok → SQLite, synchronous=full) against the same pipeline writing
# JSON lines to a file with fdatasync before every acknowledgement (RELP → file), batched alike. The same
# loggen RELP load drives both; loggen returns once every message is acknowledged, and a RELP
# acknowledgement means committed, so msgs/s = COUNT / loggen's time.
#
#   bash scripts/bench-embedded.sh [COUNT] [SIZE] [CONNECTIONS] [WINDOW]
#
# Defaults: 1000000 messages of 200 bytes over 2 connections, each with up to WINDOW (1024)
# unacknowledged messages (rsyslog's omrelp keeps up to 128).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-1000000}
SIZE=${2:-200}
CONNECTIONS=${3:-2}
WINDOW=${4:-1024}

cargo build --release --quiet --example loggr --example loggen
BIN=${CARGO_TARGET_DIR:-target}/release/examples
D=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
TICKS=$(getconf CLK_TCK)
RELP=23514

wait_port() {
  for _ in $(seq 400); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "port $1 never opened" >&2
  exit 1
}

# The zero-config pipeline with its sqlite sink swapped for an fsync'ed JSON-lines file,
# batched exactly as the sqlite sink is (its `batch = …` line).
"$BIN/loggr" --print-config | awk '
  /^\[\[sinks\]\]/ { skip = 1 }
  skip && /^batch = / { batch = $0 }
  !skip { print }
  END {
    if (batch == "") { print "no batch line in the sqlite sink" > "/dev/stderr"; exit 1 }
    print "[[sinks]]"; print "type = \"file\""; print "name = \"file\""
    print "path = \"${LOGGR_DATA}/events.jsonl\""; print "fsync = \"always\""; print "format = \"json\""
    print batch
  }' > "$D/file.toml"

# run NAME [loggr args…]
run() {
  local name=$1; shift
  local data="$D/$name"
  mkdir -p "$data"
  LOGGR_DATA=$data LOGGR_RELP=127.0.0.1:$RELP LOGGR_TCP=127.0.0.1:23515 LOGGR_UDP=127.0.0.1:23515 \
    LOGGR_METRICS=127.0.0.1:23516 RUST_LOG=warn "$BIN/loggr" "$@" 2>"$data.log" &
  PID=$!
  wait_port $RELP
  local before start end after
  before=$(awk '{print $14 + $15}' "/proc/$PID/stat")
  start=$(date +%s.%N)
  "$BIN/loggen" send --target "127.0.0.1:$RELP" --transport relp --count "$COUNT" --size "$SIZE" \
    --connections "$CONNECTIONS" --window "$WINDOW" >/dev/null
  end=$(date +%s.%N)
  after=$(awk '{print $14 + $15}' "/proc/$PID/stat")
  kill -TERM "$PID"; wait "$PID" || true; PID=
  local stored
  if [ -f "$data/loggr.db" ]; then
    stored=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from event').fetchone()[0])" "$data/loggr.db")
  else
    stored=$(wc -l < "$data/events.jsonl")
  fi
  awk -v n="$COUNT" -v s="$start" -v e="$end" -v c=$((after - before)) -v t="$TICKS" \
      -v name="$name" -v stored="$stored" 'BEGIN {
    cpu = c / t; if (cpu <= 0) cpu = 1 / t;
    printf "| %-16s | %9.0f | %10.0f | %6.2f | %s |\n", name, n / (e - s), n / cpu, e - s, stored }'
}

echo "| pipeline | msgs/s | msgs/CPU-s | seconds | stored |"
echo "| --- | ---: | ---: | ---: | ---: |"
run "relp→file" --config "$D/file.toml"
run "relp→sqlite"
