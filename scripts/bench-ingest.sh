#!/usr/bin/env bash
# Ingest speed, side by side in one run: a private rsyslogd (imptcp and imrelp → omfile with
# RSYSLOG_FileFormat, no fsync) and loggr's syslog_server (--tcp and --relp → a file in the same
# format, with fdatasync before every acknowledgement and without; then writing loggr's full
# JSON events with fdatasync), all
# driven by the same loggen load, every message verified by `loggen check`.
#
#   bash scripts/bench-ingest.sh [COUNT] [SIZE] [CONNECTIONS]     (defaults 1000000 200 2)
#
# TRANSPORTS="tcp" or "relp" runs one transport only; VARIANTS (default
# "rsyslog:always rsyslog:never json:always") picks loggr's line format and fsync policy.
#
# Prints msgs/s (first message sent → last message in the file) and msgs per CPU-second of
# the receiving process.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-1000000}
SIZE=${2:-200}
CONNECTIONS=${3:-2}
[ -x /usr/sbin/rsyslogd ] || { echo "rsyslog is needed: apt-get install rsyslog rsyslog-relp" >&2; exit 1; }

cargo build --release --quiet --example syslog_server --example loggen
BIN=${CARGO_TARGET_DIR:-target}/release/examples
D=$(mktemp -d)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$D"; }
trap cleanup EXIT
TICKS=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
wait_port() {
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "port $1 never opened" >&2
  exit 1
}

# measure NAME PID PORT TRANSPORT FILE
measure() {
  local name=$1 pid=$2 port=$3 transport=$4 file=$5 run="bench$RANDOM"
  local before start end after verdict
  before=$(cpu_ticks "$pid")
  start=$(date +%s.%N)
  "$BIN/loggen" send --target "127.0.0.1:$port" --transport "$transport" --framing octet \
    --count "$COUNT" --size "$SIZE" --connections "$CONNECTIONS" --run-id "$run" >/dev/null 2>&1
  # Done when the file holds every line. Reading a growing file over and over would steal
  # the CPU being measured, so watch its size and count lines only once it stops growing;
  # the end time is when it last grew.
  local size last=-1 changed
  changed=$(date +%s.%N)
  while :; do
    size=$(stat -c %s "$file" 2>/dev/null || echo 0)
    if [ "$size" != "$last" ]; then
      last=$size; changed=$(date +%s.%N); sleep 0.01; continue
    fi
    if awk -v c="$changed" -v n="$(date +%s.%N)" 'BEGIN { exit !(n - c > 0.3) }'; then
      [ "$(wc -l < "$file")" -ge "$COUNT" ] && break
    fi
    sleep 0.01
  done
  end=$changed
  after=$(cpu_ticks "$pid")
  verdict=$("$BIN/loggen" check --file "$file" --count "$COUNT" --run-id "$run" || true)
  awk -v n="$COUNT" -v s="$start" -v e="$end" -v c=$((after - before)) -v t="$TICKS" \
      -v name="$name" -v tr="$transport" -v v="$verdict" 'BEGIN {
    cpu = c / t; if (cpu <= 0) cpu = 1 / t;
    printf "| %-20s | %-4s | %9.0f | %10.0f | %6.2f | %s |\n", name, tr, n / (e - s), n / cpu, e - s, v }'
}

echo "| receiver | transport | msgs/s | msgs/CPU-s | seconds | loggen check |"
echo "| --- | --- | ---: | ---: | ---: | --- |"
for transport in ${TRANSPORTS:-tcp relp}; do
  port_rs=21514; port_lg=22514
  if [ "$transport" = relp ]; then port_rs=21515; port_lg=22515; fi

  mkdir -p "$D/rs-$transport"
  cat > "$D/rs-$transport/rsyslog.conf" <<CONF
global(workDirectory="$D/rs-$transport")
module(load="imptcp")
module(load="imrelp")
main_queue(queue.size="200000")
input(type="imptcp" address="127.0.0.1" port="21514" ruleset="out")
input(type="imrelp" address="127.0.0.1" port="21515" ruleset="out")
ruleset(name="out") { action(type="omfile" file="$D/rs-$transport/out.log" template="RSYSLOG_FileFormat") }
CONF
  /usr/sbin/rsyslogd -n -iNONE -f "$D/rs-$transport/rsyslog.conf" 2>/dev/null & RS=$!; PIDS+=("$RS")
  wait_port "$port_rs"
  measure rsyslog "$RS" "$port_rs" "$transport" "$D/rs-$transport/out.log"
  kill "$RS"; wait "$RS" 2>/dev/null || true

  for variant in ${VARIANTS:-rsyslog:always rsyslog:never json:always}; do
    format=${variant%%:*}; fsync=${variant##*:}
    out="$D/loggr-$transport-$format-$fsync.out"
    RUST_LOG=warn "$BIN/syslog_server" --tcp 127.0.0.1:22514 --relp 127.0.0.1:22515 --relp-window 1024 \
      --out "$out" --out-format "$format" --out-fsync "$fsync" & LG=$!; PIDS+=("$LG")
    wait_port "$port_lg"
    measure "loggr/$format/$fsync" "$LG" "$port_lg" "$transport" "$out"
    kill "$LG"; wait "$LG" 2>/dev/null || true
  done
done
