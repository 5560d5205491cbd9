#!/usr/bin/env bash
# Makes sure the services loggr's tests talk to are installed and running on this machine:
# PostgreSQL (127.0.0.1:5432), Redis (127.0.0.1:6379) and RabbitMQ (127.0.0.1:5672), and the
# real syslog peers (rsyslog with RELP, util-linux logger).
# Starts a stopped one; installs a missing one from Debian's packages when run as root.
# Exits non-zero, saying what to do, when a service cannot be made available.
set -euo pipefail

log() { printf '[services] %s\n' "$*" >&2; }
is_root() { [ "$(id -u)" = 0 ]; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

apt_updated=""
install_packages() {
  if ! is_root || ! command -v apt-get >/dev/null; then
    log "cannot install $* (need root on Debian/Ubuntu): install it, then rerun"
    return 1
  fi
  if [ -z "$apt_updated" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    apt_updated=1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for_port() {
  local port=$1 name=$2 seconds=${3:-60}
  for _ in $(seq "$seconds"); do
    port_open "$port" && return 0
    sleep 1
  done
  log "$name did not come up on 127.0.0.1:$port within ${seconds}s"
  return 1
}

ensure_postgres() {
  port_open 5432 && return 0
  command -v pg_ctlcluster >/dev/null || install_packages postgresql
  local version
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$version" ]; then
    log "PostgreSQL is installed but has no cluster: run 'pg_createcluster <version> main --start'"
    return 1
  fi
  log "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for_port 5432 PostgreSQL 60
  # Tests connect as the current user without a password over TCP.
  if is_root && command -v runuser >/dev/null; then
    runuser -u postgres -- psql -qtAc "SELECT 1 FROM pg_roles WHERE rolname='root'" | grep -q 1 ||
      runuser -u postgres -- createuser --superuser root || true
  fi
}

ensure_redis() {
  port_open 6379 && return 0
  command -v redis-server >/dev/null || install_packages redis-server
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/loggr-tests.log
  wait_for_port 6379 Redis 30
}

ensure_rabbitmq() {
  port_open 5672 && return 0
  command -v rabbitmq-server >/dev/null || install_packages rabbitmq-server
  log "starting RabbitMQ"
  rabbitmq-server -detached || true
  wait_for_port 5672 RabbitMQ 120
}

# Real syslog peers the integration tests drive: rsyslog (omrelp/imrelp) and util-linux logger.
ensure_peers() {
  local packages=()
  [ -x /usr/sbin/rsyslogd ] || packages+=(rsyslog)
  [ -e /usr/lib/x86_64-linux-gnu/rsyslog/omrelp.so ] || [ -e /usr/lib/rsyslog/omrelp.so ] || packages+=(rsyslog-relp)
  command -v logger >/dev/null || packages+=(bsdutils)
  # The web frontend tests of the all-in-one daemon log in with curl.
  command -v curl >/dev/null || packages+=(curl)
  # The SMTP server the report e-mail tests deliver to (PyPI's aiosmtpd).
  python3 -c 'import aiosmtpd' 2>/dev/null || python3 -m pip install --quiet aiosmtpd ||
    { log "cannot install aiosmtpd: run 'python3 -m pip install aiosmtpd'"; return 1; }
  # The compressors whose files the `files` source reads (the import tests make such files).
  command -v gzip >/dev/null || packages+=(gzip)
  command -v bzip2 >/dev/null || packages+=(bzip2)
  command -v zstd >/dev/null || packages+=(zstd)
  command -v xz >/dev/null || packages+=(xz-utils)
  [ ${#packages[@]} -eq 0 ] && return 0
  install_packages --no-install-recommends "${packages[@]}"
}

# The browser tests (loggr-web/tests/browser.rs): Debian's chromium, node and npm, and
# playwright-core from tests/browser's lockfile. Browsers are never downloaded: playwright-core
# drives /usr/bin/chromium.
ensure_browser() {
  local packages=()
  [ -x /usr/bin/chromium ] || packages+=(chromium)
  command -v node >/dev/null || packages+=(nodejs)
  command -v npm >/dev/null || packages+=(npm)
  if [ ${#packages[@]} -gt 0 ]; then
    install_packages --no-install-recommends "${packages[@]}" || {
      log "cannot install ${packages[*]}: install them (Debian: apt-get install ${packages[*]}), then rerun"
      return 1
    }
  fi
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
  [ -e "$dir/node_modules/playwright-core/package.json" ] && return 0
  log "installing playwright-core into $dir/node_modules"
  if [ -e "$dir/package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  else
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
  fi || {
    log "npm could not install playwright-core in $dir: run 'cd tests/browser && npm ci' and read its error"
    return 1
  }
}

failed=0
for service in postgres redis rabbitmq peers browser; do
  "ensure_$service" || failed=1
done
if [ "$failed" != 0 ]; then
  log "some services are unavailable; the tests that need them will fail"
  exit 1
fi
log "PostgreSQL, Redis and RabbitMQ are up; rsyslog, logger, the compressors, aiosmtpd, chromium and playwright-core are installed"
