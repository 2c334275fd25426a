#!/bin/bash
# mlrt postgres entrypoint (runs under tini as the non-root user).
#   serve    initialise $PGDATA on first start (superuser from MLRT_POSTGRES_USER_FILE, `mlrt` without it;
#            password from MLRT_POSTGRES_PASSWORD_FILE,
#            scram-sha-256 for every network client), create the databases in MLRT_POSTGRES_DATABASES that do
#            not exist yet (comma-separated), then run the server in the foreground on MLRT_POSTGRES_PORT
#   health   exit 0 when the server accepts network connections
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

# The account and the databases, over the local socket of a server that listens on no network yet (local
# connections trusted for this step only, through a pg_hba file outside $PGDATA): the superuser's password is set
# from the file on every start, so a rotated Secret (or a reinstall that generated a new one) takes effect.
bootstrap() {
  local name user hba=/tmp/mlrt-postgres-bootstrap-hba.conf
  user=$(superuser)
  echo "local all all trust" >"$hba"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c hba_file=$hba" -w start >/dev/null
  local sql=(psql -X -q -v ON_ERROR_STOP=1 -h /run/postgresql -U "$user" -d postgres)
  if ! "${sql[@]}" -tAc "SELECT 1" >/dev/null 2>&1; then
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    die "the data in $PGDATA has no role '$user' (it was created with another superuser); use that name"
  fi
  # the password from the file through psql's own \set (never a command line or the environment)
  "${sql[@]}" <<SQL
\\set password \`tr -d '\\r\\n' < $(password_file)\`
ALTER ROLE "$user" WITH PASSWORD :'password';
SQL
  for name in ${MLRT_POSTGRES_DATABASES//,/ }; do
    [[ "$name" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "MLRT_POSTGRES_DATABASES: '$name' is not a database name (a-z 0-9 _)"
    if [ -z "$("${sql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'")" ]; then
      "${sql[@]}" -c "CREATE DATABASE $name" && echo "mlrt-postgres: created database $name" >&2
    fi
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  rm -f "$hba"
}

serve() {
  [[ "${MLRT_POSTGRES_PORT:-}" =~ ^[0-9]+$ ]] || die "MLRT_POSTGRES_PORT=${MLRT_POSTGRES_PORT:-} is not a port number"
  password_file >/dev/null
  superuser >/dev/null
  init
  bootstrap
  exec postgres -D "$PGDATA" -p "$MLRT_POSTGRES_PORT" "$@"
}

case "${1:-serve}" in
  serve) shift || true; serve "$@" ;;
  # over TCP: the bootstrap step's server (socket only) is not the one clients reach
  health) exec pg_isready -q -h 127.0.0.1 -p "${MLRT_POSTGRES_PORT:-5432}" ;;
  *) exec "$@" ;;
esac
