#!/usr/bin/env bash
# The SQL store's tests against a real PostgreSQL and SQLite. Makes a
# throwaway PostgreSQL cluster (initdb into a temporary directory, fsync
# off, listening on 127.0.0.1 at a free port, its unix socket in that
# directory), starts it, creates a database, and runs "go vet",
# "go test -count=1 ./...", "go test -race" and the benchmarks once (untimed)
# in this module, with
#   EMAILCONN_TEST_POSTGRES     the database's DSN
#   EMAILCONN_REQUIRE_POSTGRES  1: a test without the DSN fails, not skips
#   EMAILCONN_TEST_PGCTL        a command: "$EMAILCONN_TEST_PGCTL stop" and
#                               "... start" stop and start the server (the
#                               tests of a database that goes away)
#   PGDATA                      the cluster's directory
# The server is stopped and the directory removed on exit, failure or not.
#
# Run as root (CI), the cluster belongs to the "postgres" user and every
# PostgreSQL command runs as that user (PostgreSQL refuses to run as root);
# run as anyone else, it belongs to you. The binaries are found on PATH or
# in /usr/lib/postgresql/<version>/bin (the newest); without them the
# script fails and says what to install.
#
# Usage: internal/sqlstoretest/run.sh [go test flags, e.g. -run TestConformance -v]
#   With flags, runs only "go test -count=1 <flags> ./..." (no vet, no -race).
set -euo pipefail

started=$SECONDS
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
export GOWORK=off

log() { printf 'sqlstoretest: %s\n' "$*"; }
die() { printf 'sqlstoretest: error: %s\n' "$*" >&2; exit 1; }

# 1. The PostgreSQL binaries.
bindir=
if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
  bindir=$(dirname "$(readlink -f "$(command -v initdb)")")
else
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/psql" ]; then bindir=$d; break; fi
  done
fi
[ -n "$bindir" ] && [ -x "$bindir/psql" ] || die "PostgreSQL's initdb, pg_ctl and psql were not found on PATH nor in /usr/lib/postgresql/*/bin: install the server (Debian, Ubuntu: apt-get install postgresql) or put its bin directory on PATH"

# 2. Who runs the server: postgres when we are root.
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || die "running as root, but there is no \"postgres\" user to run PostgreSQL as (PostgreSQL refuses to run as root)"
  command -v runuser >/dev/null 2>&1 || die "running as root, but runuser (util-linux) is missing to run PostgreSQL as \"postgres\""
  runas=(runuser -u postgres --)
else
  runas=()
fi
pg() { "${runas[@]}" "$@"; }

# 3. The cluster, in memory when possible.
tmpbase=${TMPDIR:-/tmp}
if [ -d /dev/shm ] && [ -w /dev/shm ]; then tmpbase=/dev/shm; fi
tmp=$(mktemp -d "$tmpbase/emailconn-sqlstore.XXXXXX")
chmod 755 "$tmp"
export PGDATA=$tmp/data
status=1

cleanup() {
  status=$?
  set +e
  if [ -f "$PGDATA/postmaster.pid" ]; then
    pg "$bindir/pg_ctl" stop -D "$PGDATA" -m immediate -w >/dev/null 2>&1
  fi
  if [ "$status" -ne 0 ] && [ -s "$tmp/server.log" ]; then
    log "last lines of the server's log:"
    tail -n 20 "$tmp/server.log" | sed 's/^/    /'
  fi
  rm -rf "$tmp"
  log "stopped the server, removed $tmp; took $((SECONDS - started))s (exit status $status)"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "${#runas[@]}" -gt 0 ]; then chown postgres: "$tmp"; fi

# A free port: the kernel's choice for a socket bound to port 0.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null) ||
  port=$(( 20000 + RANDOM % 20000 ))

log "initdb with $bindir into $PGDATA (port $port)"
pg "$bindir/initdb" -D "$PGDATA" -U postgres --auth=trust --encoding=UTF8 --no-locale --no-sync >"$tmp/initdb.log" 2>&1 ||
  { cat "$tmp/initdb.log" >&2; die "initdb failed"; }
# The settings live in the cluster, so a plain "pg_ctl start" brings the
# same server back.
cat >>"$PGDATA/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$tmp'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF

# The tests' handle on the server: "$EMAILCONN_TEST_PGCTL stop|start".
cat >"$tmp/pgctl" <<EOF
#!/usr/bin/env bash
set -euo pipefail
case "\${1:-}" in
  stop)  exec ${runas[*]} "$bindir/pg_ctl" stop -D "$PGDATA" -m fast -w ;;
  start) exec ${runas[*]} "$bindir/pg_ctl" start -D "$PGDATA" -w -t 60 -l "$tmp/server.log" ;;
  *) echo "usage: \$0 stop|start" >&2; exit 2 ;;
esac
EOF
chmod 755 "$tmp/pgctl"
export EMAILCONN_TEST_PGCTL=$tmp/pgctl

"$EMAILCONN_TEST_PGCTL" start >/dev/null || die "pg_ctl start failed"
pg "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qAt -c 'CREATE DATABASE emailconn_test' >/dev/null
export EMAILCONN_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/emailconn_test?sslmode=disable"
export EMAILCONN_REQUIRE_POSTGRES=1
log "PostgreSQL $(pg "$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"

# 4. The tests.
if [ "$#" -gt 0 ]; then
  go test -count=1 "$@" ./...
  exit 0
fi
log "go vet"
go vet ./...
log "go test -count=1 ./..."
go test -count=1 ./...
log "go test -race -count=1 ./..."
go test -race -count=1 ./...
log "benchmarks once, untimed"
go test -run '^$' -bench . -benchtime=1x ./... >/dev/null
log "ok"
