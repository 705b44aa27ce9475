#!/usr/bin/env bash
# Interoperability suite: emailconn against Mailpit, an independently
# written SMTP server. Builds Mailpit (once, into a cache directory), makes
# a throwaway CA and server certificate, starts four Mailpit instances on
# 127.0.0.1, runs "go vet" and "go test -count=1 ./..." in this module with
# their addresses in EMAILCONN_INTEROP_*, and always stops them and removes
# the temporary files.
#
# Usage: internal/interop/run.sh [go test flags, e.g. -run TestSessions -v]
#
# Environment:
#   MAILPIT                  a Mailpit binary to use instead of building one
#   EMAILCONN_INTEROP_CACHE  where the built Mailpit is kept
#                            (default: ${XDG_CACHE_HOME:-$HOME/.cache}/emailconn-interop)
set -euo pipefail

MAILPIT_VERSION=v1.33.1
started=$SECONDS
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
export GOWORK=off

log() { printf 'interop: %s\n' "$*"; }

# Temporary files, Mailpit's databases among them, go to memory when
# possible: on a disk, SQLite's fsyncs make each instance take seconds to
# start and to stop.
tmpbase=${TMPDIR:-/tmp}
if [ -d /dev/shm ] && [ -w /dev/shm ]; then tmpbase=/dev/shm; fi
tmp=$(mktemp -d "$tmpbase/emailconn-interop.XXXXXX")
pids=()
names=()
status=1

cleanup() {
  status=$?
  set +e
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [ "$status" -ne 0 ] && [ "${#names[@]}" -gt 0 ]; then
    for name in "${names[@]}"; do
      if [ -s "$tmp/$name.log" ]; then
        log "last lines of Mailpit $name's log:"
        tail -n 20 "$tmp/$name.log" | sed 's/^/    /'
      fi
    done
  fi
  rm -rf "$tmp"
  log "stopped the instances; took $((SECONDS - started))s (exit status $status)"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Mailpit's own configuration variables must not change the instances.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^MP_' || true)

# 1. Mailpit, built once per version.
if [ -n "${MAILPIT:-}" ]; then
  mailpit=$MAILPIT
else
  cache=${EMAILCONN_INTEROP_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/emailconn-interop}
  mailpit=$cache/mailpit-$MAILPIT_VERSION/mailpit
  if [ ! -x "$mailpit" ]; then
    log "building Mailpit $MAILPIT_VERSION into $(dirname "$mailpit")"
    t0=$SECONDS
    mkdir -p "$cache"
    partial=$(mktemp -d "$cache/build.XXXXXX")
    GOBIN=$partial go install "github.com/axllent/mailpit@$MAILPIT_VERSION"
    mkdir -p "$(dirname "$mailpit")"
    mv "$partial/mailpit" "$mailpit"
    rmdir "$partial"
    log "built Mailpit in $((SECONDS - t0))s"
  fi
fi

# 2. The suite's helpers, a throwaway CA and server certificate, and the
# SMTP password file (a random password for this run only).
go build -o "$tmp/bin/" ./cmd/...
"$tmp/bin/gencert" "$tmp"
user=interop-sender
password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
printf '%s:%s\n' "$user" "$password" >"$tmp/smtp-auth"
chmod 600 "$tmp/smtp-auth"

# 3. The Mailpit instances, each with its own database, on 127.0.0.1 only.
# They start in parallel; one whose port another process took in between
# is started again on new ports.
tlsflags=(--smtp-tls-cert "$tmp/server.pem" --smtp-tls-key "$tmp/server-key.pem")
instance_flags() { # sets flags for instance $1
  case $1 in
  PLAIN) flags=(--smtp-auth-file "$tmp/smtp-auth" --smtp-auth-allow-insecure) ;;
  STARTTLS) flags=("${tlsflags[@]}" --smtp-require-starttls --smtp-auth-file "$tmp/smtp-auth") ;;
  TLS) flags=("${tlsflags[@]}" --smtp-require-tls --smtp-auth-file "$tmp/smtp-auth") ;;
  CHAOS) flags=(--enable-chaos --smtp-auth-file "$tmp/smtp-auth" --smtp-auth-allow-insecure
    --max-message-size 1 --smtp-allowed-recipients '@example\.com$') ;;
  esac
}
declare -A smtp_port http_port pid_of
launch() { # launch NAME: start one instance on free ports, without waiting
  local name=$1 flags
  instance_flags "$name"
  { read -r smtp_port[$name]; read -r http_port[$name]; } < <("$tmp/bin/freeport" 2)
  rm -f "$tmp/$name.db"*
  "$mailpit" \
    --label "$name" \
    --smtp "127.0.0.1:${smtp_port[$name]}" \
    --listen "127.0.0.1:${http_port[$name]}" \
    --database "$tmp/$name.db" \
    --max 0 \
    --disable-version-check \
    --smtp-disable-rdns \
    "${flags[@]}" >"$tmp/$name.log" 2>&1 &
  pid_of[$name]=$!
  pids+=("$!")
}
await() { # await NAME: wait until both listeners answer; relaunch on failure
  local name=$1 try
  for try in 1 2 3; do
    if "$tmp/bin/waitready" -timeout 30s -pid "${pid_of[$name]}" \
      "http://127.0.0.1:${http_port[$name]}/readyz" "tcp:127.0.0.1:${smtp_port[$name]}"; then
      export "EMAILCONN_INTEROP_${name}_SMTP=127.0.0.1:${smtp_port[$name]}"
      export "EMAILCONN_INTEROP_${name}_HTTP=http://127.0.0.1:${http_port[$name]}"
      log "Mailpit $name: smtp 127.0.0.1:${smtp_port[$name]}, http 127.0.0.1:${http_port[$name]}"
      return 0
    fi
    if kill -0 "${pid_of[$name]}" 2>/dev/null; then
      log "Mailpit $name is running but does not answer"
      return 1
    fi
    log "Mailpit $name did not start (try $try):"
    tail -n 5 "$tmp/$name.log" | sed 's/^/    /'
    [ "$try" -lt 3 ] && launch "$name"
  done
  return 1
}
names=(PLAIN STARTTLS TLS CHAOS)
for name in "${names[@]}"; do launch "$name"; done
for name in "${names[@]}"; do await "$name"; done
log "instances ready after $((SECONDS - started))s"

export EMAILCONN_INTEROP_CA_FILE=$tmp/ca.pem
export EMAILCONN_INTEROP_USER=$user
export EMAILCONN_INTEROP_PASSWORD=$password

# 4. The suite. When the root module gained a dependency since go.mod and
# go.sum here were tidied, let the go command add it for this run rather
# than fail, and say so.
modflag=()
if ! go mod tidy -diff >/dev/null 2>&1; then
  log "note: go.mod/go.sum here are not tidy (did the root module change its dependencies?); run 'go mod tidy' in internal/interop"
  modflag=(-mod=mod)
fi
go vet "${modflag[@]}" ./...
go test "${modflag[@]}" -count=1 -timeout=5m "$@" ./...
