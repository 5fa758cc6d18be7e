#!/usr/bin/env bash
# Start what the test suite talks to, when it is not already running: Redis, PostgreSQL, and the
# Debian Chromium used by the browser tests. Installs from Debian packages when missing (root).
set -uo pipefail

log() { echo "[services] $*"; }
apt_updated=0
apt_install() {
  if [ "$(id -u)" != "0" ]; then
    log "cannot install $* without root; install it yourself"; return 1
  fi
  if [ "$apt_updated" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Redis on 127.0.0.1:6379
if port_open 6379; then
  log "redis: running"
else
  command -v redis-server >/dev/null || apt_install redis-server
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/unisd-test-redis.log && log "redis: started"
fi

# PostgreSQL on 127.0.0.1:5432, database `test`
if port_open 5432; then
  log "postgresql: running"
else
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)
  if [ -n "$version" ]; then
    pg_ctlcluster --skip-systemctl-redirect "$version" main start && log "postgresql: started"
    for _ in $(seq 1 30); do port_open 5432 && break; sleep 0.5; done
  fi
fi
if port_open 5432 && command -v psql >/dev/null; then
  if ! psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1; then
    # A freshly installed cluster: give `postgres` a password and create the test database.
    su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" 2>/dev/null
    su postgres -c "createdb test" 2>/dev/null
  fi
fi

# Chromium for the browser tests (never a downloaded browser)
if command -v chromium >/dev/null; then
  log "chromium: $(command -v chromium)"
else
  apt_install chromium && log "chromium: installed"
fi
exit 0
