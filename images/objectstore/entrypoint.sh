#!/bin/bash
# mlrt objectstore entrypoint (runs under tini as the non-root user).
#   serve    create the buckets in MLRT_OBJECTSTORE_BUCKETS, then serve S3 on MLRT_OBJECTSTORE_LISTEN_PORT
#   health   exit 0 when the server answers HTTP (any status: anonymous requests get 403)
#   anything else runs as given
# The key pair comes from files, never from the command line (`ps` would show it): MLRT_S3_CREDENTIALS_DIR
# holds access_key_id and secret_access_key; rclone reads it from its environment (RCLONE_AUTH_KEY).
set -euo pipefail

die() { echo "mlrt-objectstore: ERROR: $*" >&2; exit 64; }

serve() {
  local dir="${MLRT_S3_CREDENTIALS_DIR:-}" data="${MLRT_OBJECTSTORE_DATA:?}" bucket
  [ -n "$dir" ] || die "MLRT_S3_CREDENTIALS_DIR is not set; point it at a directory with access_key_id and secret_access_key (make up generates the pair in .env)"
  for file in access_key_id secret_access_key; do
    [ -s "$dir/$file" ] || die "$dir/$file is missing or empty; the store refuses to start without a key pair"
  done
  [[ "${MLRT_OBJECTSTORE_LISTEN_PORT:-}" =~ ^[0-9]+$ ]] \
    || die "MLRT_OBJECTSTORE_LISTEN_PORT=${MLRT_OBJECTSTORE_LISTEN_PORT:-} is not a port number"
  [ -w "$data" ] || die "$data is not writable by uid $(id -u); mount a volume owned by it there"
  for bucket in ${MLRT_OBJECTSTORE_BUCKETS//,/ }; do
    [[ "$bucket" =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] \
      || die "MLRT_OBJECTSTORE_BUCKETS: '$bucket' is not an S3 bucket name (3-63 of a-z 0-9 . -, starting and ending with a letter or digit)"
    mkdir -p "$data/$bucket"
  done
  # A list flag read from the environment is CSV: the pair is one quoted field.
  RCLONE_AUTH_KEY="\"$(tr -d '\r\n' <"$dir/access_key_id"),$(tr -d '\r\n' <"$dir/secret_access_key")\""
  export RCLONE_AUTH_KEY
  # MD5 ETags as S3 gives them (S3A's change detection compares them); no config file; logs to stderr.
  exec rclone serve s3 "$data" --addr ":${MLRT_OBJECTSTORE_LISTEN_PORT:?}" --etag-hash MD5 --config /dev/null \
    --log-level "${MLRT_OBJECTSTORE_LOG_LEVEL:-NOTICE}" "$@"
}

case "${1:-serve}" in
  serve) shift || true; serve "$@" ;;
  health)
    exec python -c "import os, urllib.request as u, urllib.error as e
try: u.urlopen('http://127.0.0.1:%s/' % os.environ['MLRT_OBJECTSTORE_LISTEN_PORT'], timeout=4)
except e.HTTPError: pass"
    ;;
  *) exec "$@" ;;
esac
