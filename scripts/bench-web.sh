#!/usr/bin/env bash
# Load test of the web frontend's query page over a big store: concurrent users (wrk) on the
# first page, a host over a month, severity filters over a month, program + tag over a day,
# text searches (a rare text over a day and over everything, a common word over a month);
# prints p50/p90/p99 per query, and the errors: non-2xx answers, requests that timed out (wrk
# gives up after 2 s; their latencies are not in the percentiles).
#
#   bash scripts/bench-web.sh fill [DB]   # (re)creates DB (default loggr_web_bench): 5 M events
#                                         # and the message search index (SEARCH_INDEX=0: none)
#   bash scripts/bench-web.sh run [DB]    # builds web_frontend (release), serves DB, runs wrk
#   bash scripts/bench-web.sh drop [DB]   # drops DB (several GB)
#
# Env: EVENTS (5000000), DURATION (20s), CONNECTIONS (20), THREADS (2), PORT (18080),
# PGHOST/PGPORT/PGUSER (127.0.0.1/5432/root). Needs psql, curl, wrk (apt-get install wrk).
# The data set spans 2026-08-22 to 2026-11-20: ~50 hosts, 30 programs, ~2% of events at err
# or worse, ~1% tagged auth_failure (sshd), ~7% cron_job (cron), 0.5% disk.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-run}
db=${2:-loggr_web_bench}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-root}
events=${EVENTS:-5000000}
port=${PORT:-18080}
log() { printf '[bench-web] %s\n' "$*" >&2; }
psql_db() { psql -X -q -v ON_ERROR_STOP=1 -d "$1" "${@:2}"; }

fill() {
  psql_db postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  for migration in loggr-sinks/src/postgres/migrations/*.sql; do
    psql_db "$db" -f "$migration" 2>&1 | grep -v NOTICE || true
  done
  log "inserting $events events into $db (a few minutes)"
  psql_db "$db" -v events="$events" <<'SQL'
-- Each event's tags are written with it, as the sink does (an UPDATE afterwards would move the
-- tagged rows to the end of the table), then their `tag` rows.
INSERT INTO event (digest, logtime, received_at, facility, severity, hostname, program, pid, message, tags)
SELECT sha256(i::text::bytea), t, t, (i % 24)::smallint,
       CASE WHEN r < 0.02 THEN floor(r * 200)::smallint
            WHEN r < 0.08 THEN 4 WHEN r < 0.50 THEN 5 WHEN r < 0.97 THEN 6 ELSE 7 END,
       'host' || lpad(h::text, 2, '0'), p, (1000 + i % 30000)::text,
       CASE WHEN p = 'sshd' AND i % 4 = 0
            THEN 'Failed password for invalid user u' || (i % 977) || ' from 10.' || (i % 250)
                 || '.' || (i % 199) || '.7 port ' || (i % 60000) || ' ssh2'
            ELSE p || ' worker ' || (i % 1013) || ' finished job ' || md5(i::text) || ' in '
                 || (i % 97) || ' ms' END,
       NULLIF(array_remove(ARRAY[CASE WHEN p = 'sshd' AND i % 4 = 0 THEN 'auth_failure' END,
                                 CASE WHEN p = 'cron' THEN 'cron_job' END,
                                 CASE WHEN i % 200 = 0 THEN 'disk' END], NULL), '{}')
FROM (
  SELECT i, timestamptz '2026-08-22 00:00:00+00' + i * (interval '90 days' / :events) AS t,
         random() AS r, floor(random() * random() * 50)::int AS h,
         (ARRAY['sudo','nginx','kernel','cron','systemd','postfix','dovecot','sshd','haproxy',
                'named','ntpd','dhcpd','rsyslogd','snmpd','slurmd','munged','auditd','smartd',
                'crond','apache2','mysqld','postgres','redis','dockerd','containerd','kubelet',
                'puppet','zabbix_agentd','nscd','sssd'])[1 + floor(random() * random() * 30)::int] AS p
  FROM generate_series(1, :events) AS i
) s;
INSERT INTO tag (event, name) SELECT id, unnest(tags) FROM event WHERE tags IS NOT NULL;
VACUUM ANALYZE event;
VACUUM ANALYZE tag;
SQL
  if [ "${SEARCH_INDEX:-1}" = 1 ]; then
    # What loggr-sinks' create_search_index builds (pg_trgm's GIN index, as the web UI's text
    # search expects), with more memory for the build (about 5 minutes on 2 cores).
    log "building the message search index (a few minutes)"
    psql_db "$db" -c "CREATE EXTENSION IF NOT EXISTS pg_trgm" -c "SET maintenance_work_mem = '1GB'" \
      -c "CREATE INDEX CONCURRENTLY IF NOT EXISTS event_message_trgm_idx ON event USING gin (message gin_trgm_ops)"
  fi
  psql_db "$db" -Atc "SELECT count(*) || ' events, ' || pg_size_pretty(pg_database_size(current_database())) FROM event"
}

run() {
  command -v wrk >/dev/null || { log "wrk is missing: apt-get install wrk"; exit 1; }
  local target=${CARGO_TARGET_DIR:-target}
  local binary=${WEB_FRONTEND:-$target/release/examples/web_frontend}
  if [ -z "${WEB_FRONTEND:-}" ]; then
    cargo build --quiet --release --all-features --example web_frontend
  fi
  local password hash cookie_jar session csrf
  # Globals: the EXIT trap runs after this function returned.
  work=$(mktemp -d)
  password="bench-$RANDOM-$RANDOM"
  hash=$(echo "$password" | "$binary" hash-password)
  cat >"$work/web.toml" <<EOF
listen = "127.0.0.1:$port"
database_url = "postgresql://$PGUSER@$PGHOST:$PGPORT/$db"
secure_cookies = false
page_size = 50
[[users]]
name = "bench"
password_hash = "$hash"
role = "reader"
EOF
  RUST_LOG=warn "$binary" --config "$work/web.toml" &
  server=$!
  trap 'kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
  for _ in $(seq 50); do
    curl -s -o /dev/null "http://127.0.0.1:$port/login" && break
    sleep 0.2
  done
  cookie_jar="$work/cookies"
  csrf=$(curl -s -c "$cookie_jar" "http://127.0.0.1:$port/login" |
    sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p')
  curl -s -o /dev/null -b "$cookie_jar" -c "$cookie_jar" \
    --data-urlencode "csrf=$csrf" --data-urlencode "username=bench" \
    --data-urlencode "password=$password" "http://127.0.0.1:$port/login"
  session=$(awk '$6 == "loggr_session" { print $7 }' "$cookie_jar")
  [ -n "$session" ] || { log "login failed"; exit 1; }

  local -a queries=(
    "first page|/events"
    "host + month|/events?from=2026-10-01&to=2026-10-31&host=host07"
    "severity<=3 + month|/events?from=2026-10-01&to=2026-10-31&severity=3"
    "severity<=6 + month|/events?from=2026-10-01&to=2026-10-31&severity=6"
    "emerg + program + month|/events?from=2026-10-01&to=2026-10-31&program=nginx&severity=0"
    "program + tag + day|/events?from=2026-11-10&to=2026-11-10&program=sshd&tag=auth_failure"
    "text + day|/events?from=2026-11-10&to=2026-11-10&q=invalid%20user%20u42"
    "common text + month|/events?from=2026-10-01&to=2026-10-31&q=finished"
    "rare text, everything|/events?q=user%20u42%20from"
  )
  printf '%-24s %9s %9s %9s %9s %s\n' query p50 p90 p99 req/s errors
  local entry name path out
  for entry in "${queries[@]}"; do
    name=${entry%%|*}
    path=${entry#*|}
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: loggr_session=$session" \
      "http://127.0.0.1:$port$path")" = 200 ] || { log "$path does not answer 200"; exit 1; }
    out=$(wrk -t"${THREADS:-2}" -c"${CONNECTIONS:-20}" -d"${DURATION:-20s}" --latency \
      -H "Cookie: loggr_session=$session" "http://127.0.0.1:$port$path")
    printf '%-24s %9s %9s %9s %9s %s\n' "$name" \
      "$(awk '$1 == "50%" { print $2 }' <<<"$out")" \
      "$(awk '$1 == "90%" { print $2 }' <<<"$out")" \
      "$(awk '$1 == "99%" { print $2 }' <<<"$out")" \
      "$(awk '$1 == "Requests/sec:" { print $2 }' <<<"$out")" \
      "$({ grep -o 'Non-2xx or 3xx responses: [0-9]*' <<<"$out"
        grep -o 'timeout [0-9]*' <<<"$out" | grep -v 'timeout 0$'; } | paste -sd ' ' - |
        grep . || echo 0)"
  done
}

case "$mode" in
  fill) fill ;;
  run) run ;;
  drop) psql_db postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" ;;
  *) log "usage: bash scripts/bench-web.sh fill|run|drop [DB]"; exit 2 ;;
esac
