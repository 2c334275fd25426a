#!/bin/bash
# mlrt postgres entrypoint (runs under tini as the non-root user).
#   serve    initialise $PGDATA on first start (superuser from MLRT_POSTGRES_USER_FILE, `mlrt` without it;
#            password from MLRT_POSTGRES_PASSWORD_FILE,
#            scram-sha-256 for every network client), create the databases in MLRT_POSTGRES_DATABASES that do
#            not exist yet (comma-separated), then run the server in the foreground on MLRT_POSTGRES_PORT
#   health   exit 0 when the server accepts connections
#   anything else runs as given
set -euo pipefail

die() { echo "mlrt-postgres: ERROR: $*" >&2; exit 64; }

password_file() {
  local file="${MLRT_POSTGRES_PASSWORD_FILE:-}"
  [ -n "$file" ] || die "MLRT_POSTGRES_PASSWORD_FILE is not set; point it at a file holding the superuser's password"
  [ -s "$file" ] || die "$file is missing or empty; the database refuses to start without a password"
  echo "$file"
}

superuser() {
  local name=mlrt
  if [ -n "${MLRT_POSTGRES_USER_FILE:-}" ]; then
    [ -s "$MLRT_POSTGRES_USER_FILE" ] || die "$MLRT_POSTGRES_USER_FILE is missing or empty; it names the superuser"
    name=$(tr -d '\r\n' <"$MLRT_POSTGRES_USER_FILE")
  fi
  [[ "$name" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "the superuser's name '$name' is not a PostgreSQL role name (a-z 0-9 _)"
  echo "$name"
}

init() {
  local parent
  parent=$(dirname "$PGDATA")
  [ -w "$parent" ] || die "$parent is not writable by uid $(id -u); mount a volume owned by it there"
  [ -s "$PGDATA/PG_VERSION" ] && return 0
  echo "mlrt-postgres: initialising $PGDATA" >&2
  initdb --username="$(superuser)" --pwfile="$(password_file)" --auth-local=scram-sha-256 --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  {
    echo "listen_addresses = '*'"
    echo "unix_socket_directories = '/run/postgresql'"
    echo "password_encryption = scram-sha-256"
  } >>"$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
}

databases() {
  local name user
  user=$(superuser)
  PGPASSWORD=$(tr -d '\r\n' <"$(password_file)") || die "cannot read the password file"
  export PGPASSWORD
  for name in ${MLRT_POSTGRES_DATABASES//,/ }; do
    [[ "$name" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "MLRT_POSTGRES_DATABASES: '$name' is not a database name (a-z 0-9 _)"
    if [ -z "$(psql -h /run/postgresql -U "$user" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'")" ]; then
      psql -h /run/postgresql -U "$user" -d postgres -qc "CREATE DATABASE $name" && echo "mlrt-postgres: created database $name" >&2
    fi
  done
  unset PGPASSWORD
}

serve() {
  [[ "${MLRT_POSTGRES_PORT:-}" =~ ^[0-9]+$ ]] || die "MLRT_POSTGRES_PORT=${MLRT_POSTGRES_PORT:-} is not a port number"
  password_file >/dev/null
  superuser >/dev/null
  init
  # Databases are created over the local socket only, before the server listens on the network.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  databases
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  exec postgres -D "$PGDATA" -p "$MLRT_POSTGRES_PORT" "$@"
}

case "${1:-serve}" in
  serve) shift || true; serve "$@" ;;
  health) exec pg_isready -q -h /run/postgresql -p "${MLRT_POSTGRES_PORT:-5432}" ;;
  *) exec "$@" ;;
esac
