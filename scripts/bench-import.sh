#!/usr/bin/env bash
# Import speed, side by side in one run: loghub's four files ×COPIES (each copy's lines marked
# so every line is distinct; a third of the files gzip-compressed) imported by the `importer`
# (release build) into a fresh database, against a plain `COPY` of the same lines into a
# one-column table of another fresh database.
#
#   bash scripts/bench-import.sh [COPIES]        (default 100: 400 files, 800,000 lines)
#   ROUNDS=5 bash scripts/bench-import.sh        (default 3 rounds)
#
# Prints lines/s for both, and the importer's share of COPY's speed. The importer runs with
# the bundled stack as is (only lines a filter is interested in are stored) in each of ROUNDS
# rounds, each right after a COPY of its own (the machine's speed drifts: a round compares
# neighbours), and the median of the rounds' shares is reported; then once storing every line
# (BuzzSaw's stack with keep_uninteresting), against the last round's COPY.
set -euo pipefail
cd "$(dirname "$0")/.."
COPIES=${1:-100}
SHARED=${LOGGR_SHARED_DIR:-../shared}
LOGHUB="$SHARED/corpus/loghub"
[ -f "$LOGHUB/Linux_2k.log" ] || { echo "loghub files not found under $LOGHUB (set LOGGR_SHARED_DIR)" >&2; exit 1; }
PG=${LOGGR_BENCH_PG:-postgresql://root@127.0.0.1:5432}

cargo build --release --quiet --features files,postgres --example importer
D=$(mktemp -d)
DBS=()
cleanup() {
  for db in "${DBS[@]}"; do psql -X -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true; done
  rm -rf "$D"
}
trap cleanup EXIT
fresh_db() {
  psql -X -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"
  DBS+=("$1")
}

echo "== making $((COPIES * 4)) files"
mkdir -p "$D/tree"
n=0
for copy in $(seq 1 "$COPIES"); do
  for name in Linux_2k.log OpenSSH_2k.log Mac_2k.log Thunderbird_2k.log; do
    out="$D/tree/$copy-$name"
    sed "s/\$/ #$copy/" "$LOGHUB/$name" > "$out"
    n=$((n + 1))
    if [ $((n % 3)) = 0 ]; then gzip -1 "$out"; fi
  done
done
LINES=$(for f in "$D"/tree/*; do if [[ $f == *.gz ]]; then zcat "$f"; else cat "$f"; fi; done | grep -c .)
echo "   $LINES lines"

now() { date +%s.%N; }
rate() { awk -v n="$1" -v s="$2" -v e="$3" 'BEGIN { printf "%.0f", n / (e - s) }'; }

for f in "$D"/tree/*; do if [[ $f == *.gz ]]; then zcat "$f"; else cat "$f"; fi; done \
  | grep . | sed -e 's/\\/\\\\/g' -e 's/\r/\\r/g' -e 's/\t/\\t/g' > "$D/all.txt"
plain_copy() {
  echo "== plain COPY of the same lines"
  fresh_db loggr_bench_copy
  psql -X -q "$PG/loggr_bench_copy" -c "CREATE TABLE lines (line text)"
  start=$(now)
  psql -X -q "$PG/loggr_bench_copy" -c "\\copy lines FROM '$D/all.txt'"
  end=$(now)
  COPY_RATE=$(rate "$LINES" "$start" "$end")
  echo "   COPY: $COPY_RATE lines/s"
}

run_importer() { # NAME KEEP
  fresh_db "$1"
  cat > "$D/$1.toml" <<TOML
[pipeline]
channel_capacity = 16
filter_workers = 0

[[sources]]
type = "files"
directories = ["$D/tree"]
format = "auto"
window = 32
ledger = { type = "postgres", url = "$PG/$1" }

[[filters]]
type = "buzzsaw"
keep_uninteresting = $2

[[sinks]]
type = "postgres"
url = "$PG/$1"
migrate = true
writers = 2
batch = { max_events = 10000, max_bytes = 16777216, linger = "20ms" }
TOML
  start=$(now)
  target/release/examples/importer import --quiet --config "$D/$1.toml" > "$D/$1.out" 2> "$D/$1.log" \
    || { cat "$D/$1.log" >&2; exit 1; }
  end=$(now)
  local rows
  rows=$(psql -X -A -t "$PG/$1" -c "SELECT count(*) FROM event")
  cat "$D/$1.out"
  SHARE=$(awk -v a="$(rate "$LINES" "$start" "$end")" -v b="$COPY_RATE" 'BEGIN { printf "%.1f", 100 * a / b }')
  echo "   rows stored: $rows; $(rate "$LINES" "$start" "$end") lines/s = $SHARE% of COPY"
}

SHARES=()
for round in $(seq 1 "${ROUNDS:-3}"); do
  echo "== round $round"
  plain_copy
  echo "== importer, the bundled BuzzSaw stack (interesting lines stored)"
  run_importer loggr_bench_import_buzzsaw false
  SHARES+=("$SHARE")
done
echo "== importer, every line stored"
run_importer loggr_bench_import_all true
echo "== the bundled stack's share of COPY, per round: ${SHARES[*]} (%); median $(printf '%s\n' "${SHARES[@]}" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')%"
