#!/bin/bash
# mlrt entrypoint (runs under tini as the non-root user).
#   master | worker | history      Spark standalone roles, in the foreground
#   driver | executor              the contract Spark on Kubernetes expects of its images
#   anything else                  run as given (jupyter lab, spark-submit, python, bash, ...)
# For every role but driver/executor (whose conf Spark on Kubernetes mounts) the effective Spark conf is
# assembled in $SPARK_CONF_DIR from $SPARK_DEFAULTS_FILE plus:
#   SPARK_AUTH_SECRET_FILE  file holding the shared RPC authentication secret (master and worker refuse to
#                           start without it while spark.authenticate is on; local mode makes its own)
#   SPARK_MASTER_URL        spark.master for drivers started in this container
#   SPARK_DRIVER_HOST       spark.driver.host that executors use to reach a driver in this container
#   MLRT_MAVEN_REPOSITORIES Maven repositories (space-separated, in order) that --packages and
#                           spark.jars.packages resolve from (an Ivy settings file); compose and the chart set it
#   MLRT_S3_ENDPOINT        an S3-compatible endpoint (http[s]://host:port) for s3a:// paths: path-style access,
#                           region MLRT_S3_REGION (default us-east-1); unset: AWS S3 in MLRT_S3_REGION
#   MLRT_WAREHOUSE_DIR      spark.sql.warehouse.dir (managed tables), e.g. s3a://lake/warehouse
#   MLRT_METASTORE_URI      the deployment's shared catalog, thrift://host:port (a Hive metastore): sessions use
#                           spark.sql.catalogImplementation=hive with it; unset: Spark's in-memory catalog
# and Spark's logging configuration, /opt/mlrt/conf/log4j2.properties.
# Every role (executors too): MLRT_S3_CREDENTIALS_DIR, a directory holding access_key_id and secret_access_key,
# becomes the default profile of ~/.aws/credentials (mode 600; region in ~/.aws/config), which the AWS SDKs'
# default chains read: Spark's S3A, boto3, MLflow, and any later `docker exec` session alike. Never a Spark
# property, an environment variable or a command-line argument. Likewise MLRT_MLFLOW_CREDENTIALS_DIR (username,
# password) becomes ~/.mlflow/credentials for MLflow's clients.
# Python libraries beyond the image (docs/libraries.md), every role:
#   MLRT_PIP_CA_BUNDLE      a PEM file pip trusts when it is not empty: a private index's CA, a proxy's
#   MLRT_PIP_INDEX_URL, MLRT_PIP_EXTRA_INDEX_URL   pip's index and extra index when not empty
#                           (all three go to ~/.config/pip/pip.conf, which every pip of the container reads)
#   MLRT_LIBRARIES          cluster libraries (pip arguments; s3a:// wheels and -r files too), installed once into
#                           MLRT_LIBRARIES_DIR (a volume keeps them across restarts) by `python -m mlrt.libraries
#                           cluster`: every Python process of the container imports them (executors, kernels, the
#                           Connect server, exec sessions)
set -euo pipefail

die() { echo "mlrt-entrypoint: ERROR: $*" >&2; exit 64; }

# An Ivy settings file whose only resolvers are MLRT_MAVEN_REPOSITORIES, in order (Spark's defaults would also
# ask Maven Central and spark-packages, which an air-gapped cluster cannot reach). One fixed path outside
# $SPARK_CONF_DIR: a spark-submit client passes spark.jars.ivySettings on to a Kubernetes driver pod, whose
# conf directory is Spark's read-only mount; the driver role writes the same file there.
IVY_SETTINGS_FILE=/tmp/mlrt-ivy/ivysettings.xml
ivy_settings() {
  [ -n "${MLRT_MAVEN_REPOSITORIES:-}" ] || return 0
  mkdir -p "$(dirname "$IVY_SETTINGS_FILE")"
  local i=0 repo repos
  read -ra repos <<<"${MLRT_MAVEN_REPOSITORIES//,/ }"
  {
    echo '<ivysettings><settings defaultResolver="mlrt"/><resolvers><chain name="mlrt" returnFirst="true">'
    for repo in "${repos[@]}"; do
      repo=$(printf '%s' "$repo" | sed 's/&/\&amp;/g; s/"/\&quot;/g; s/</\&lt;/g')
      echo "<ibiblio name=\"mlrt-$i\" m2compatible=\"true\" root=\"${repo%/}/\"/>"
      i=$((i + 1))
    done
    echo '</chain></resolvers></ivysettings>'
  } >"$IVY_SETTINGS_FILE"
}

# private_file DIR NAME WHAT: create $HOME/DIR (mode 700) and print the path of NAME in it, or die naming WHAT.
private_file() {
  local dir="${HOME:?}/$1"
  (umask 077 && mkdir -p "$dir") 2>/dev/null && [ -w "$dir" ] \
    || die "$dir is not writable by uid $(id -u); $3 goes to $dir/$2 (mount a writable home)"
  echo "$dir/$2"
}

secret_value() { tr -d '\r\n' <"$1"; }

s3_credentials() {
  local dir="${MLRT_S3_CREDENTIALS_DIR:-}" file
  [ -n "$dir" ] || return 0
  [ -s "$dir/access_key_id" ] && [ -s "$dir/secret_access_key" ] \
    || die "MLRT_S3_CREDENTIALS_DIR=$dir needs the files access_key_id and secret_access_key (the object store's key pair; make up generates it in .env)"
  file=$(private_file .aws credentials "the object store's key pair")
  (
    umask 077
    printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
      "$(secret_value "$dir/access_key_id")" "$(secret_value "$dir/secret_access_key")" >"$file"
    printf '[default]\nregion = %s\n' "${MLRT_S3_REGION:-us-east-1}" >"$(dirname "$file")/config"
  )
}

# MLRT_MLFLOW_CREDENTIALS_DIR, a directory holding username and password (the MLflow server's account), becomes
# ~/.mlflow/credentials (mode 600), which every MLflow client reads: notebooks, executors, spark_udf.
mlflow_credentials() {
  local dir="${MLRT_MLFLOW_CREDENTIALS_DIR:-}" file
  [ -n "$dir" ] || return 0
  [ -s "$dir/username" ] && [ -s "$dir/password" ] \
    || die "MLRT_MLFLOW_CREDENTIALS_DIR=$dir needs the files username and password (the MLflow server's account; make up generates MLFLOW_ADMIN_PASSWORD in .env)"
  file=$(private_file .mlflow credentials "the MLflow account")
  (
    umask 077
    printf '[mlflow]\nmlflow_tracking_username = %s\nmlflow_tracking_password = %s\n' \
      "$(secret_value "$dir/username")" "$(secret_value "$dir/password")" >"$file"
  )
}

assemble_conf() {
  mkdir -p "$SPARK_CONF_DIR"
  local conf="$SPARK_CONF_DIR/spark-defaults.conf"
  (umask 077; : >"$conf")
  cp /opt/mlrt/conf/log4j2.properties "$SPARK_CONF_DIR/log4j2.properties"
  if [ -n "${SPARK_DEFAULTS_FILE:-}" ]; then
    [ -r "$SPARK_DEFAULTS_FILE" ] || die "SPARK_DEFAULTS_FILE=$SPARK_DEFAULTS_FILE is not readable; mount the Spark defaults there or unset it"
    cat "$SPARK_DEFAULTS_FILE" >>"$conf"
  fi
  if [ -n "${SPARK_AUTH_SECRET_FILE:-}" ]; then
    [ -s "$SPARK_AUTH_SECRET_FILE" ] || die "SPARK_AUTH_SECRET_FILE=$SPARK_AUTH_SECRET_FILE is missing or empty; provide the shared secret (make up generates SPARK_AUTH_SECRET in .env)"
    printf '\nspark.authenticate.secret %s\n' "$(secret_value "$SPARK_AUTH_SECRET_FILE")" >>"$conf"
  elif [ "${1:-}" = require-secret ] && grep -Eq '^[[:space:]]*spark\.authenticate[[:space:]]+true' "$conf"; then
    die "spark.authenticate is on but no secret was given; set SPARK_AUTH_SECRET_FILE to a file holding the shared secret"
  fi
  if [ -n "${SPARK_MASTER_URL:-}" ]; then
    printf 'spark.master %s\n' "$SPARK_MASTER_URL" >>"$conf"
  fi
  if [ -n "${MLRT_MAVEN_REPOSITORIES:-}" ]; then
    ivy_settings
    printf 'spark.jars.ivySettings %s\n' "$IVY_SETTINGS_FILE" >>"$conf"
  fi
  if [ -n "${MLRT_S3_ENDPOINT:-}" ]; then
    [[ "$MLRT_S3_ENDPOINT" =~ ^https?://[^/[:space:]]+/?$ ]] \
      || die "MLRT_S3_ENDPOINT=$MLRT_S3_ENDPOINT is not an http(s)://host[:port] URL"
    printf 'spark.hadoop.fs.s3a.endpoint %s\nspark.hadoop.fs.s3a.path.style.access true\n' "$MLRT_S3_ENDPOINT" >>"$conf"
  fi
  if [ -n "${MLRT_S3_ENDPOINT:-}${MLRT_S3_REGION:-}" ]; then
    printf 'spark.hadoop.fs.s3a.endpoint.region %s\n' "${MLRT_S3_REGION:-us-east-1}" >>"$conf"
  fi
  if [ -n "${MLRT_METASTORE_URI:-}" ]; then
    [[ "$MLRT_METASTORE_URI" =~ ^thrift://[^/[:space:]]+:[0-9]+$ ]] \
      || die "MLRT_METASTORE_URI=$MLRT_METASTORE_URI is not a thrift://host:port URI"
    printf 'spark.sql.catalogImplementation hive\nspark.hadoop.hive.metastore.uris %s\n' "$MLRT_METASTORE_URI" >>"$conf"
  fi
  if [ -n "${MLRT_WAREHOUSE_DIR:-}" ]; then
    printf 'spark.sql.warehouse.dir %s\n' "$MLRT_WAREHOUSE_DIR" >>"$conf"
  fi
  if [ -n "${SPARK_DRIVER_HOST:-}" ]; then
    printf 'spark.driver.host %s\nspark.driver.bindAddress 0.0.0.0\n' "$SPARK_DRIVER_HOST" >>"$conf"
  fi
}

# pip's settings from the deployment (a CA bundle: an empty file or /dev/null is none; a private index), as pip's
# user configuration file: pip reads it in every process of the container, `docker exec` sessions included.
pip_settings() {
  local lines=() file
  if [ -s "${MLRT_PIP_CA_BUNDLE:-}" ]; then lines+=("cert = $MLRT_PIP_CA_BUNDLE"); fi
  if [ -n "${MLRT_PIP_INDEX_URL:-}" ]; then lines+=("index-url = $MLRT_PIP_INDEX_URL"); fi
  if [ -n "${MLRT_PIP_EXTRA_INDEX_URL:-}" ]; then lines+=("extra-index-url = $MLRT_PIP_EXTRA_INDEX_URL"); fi
  if [ "${#lines[@]}" -eq 0 ]; then return 0; fi
  file=$(private_file .config/pip pip.conf "pip's settings")
  { echo '[global]'; printf '%s\n' "${lines[@]}"; } >"$file"
}

cluster_libraries() {
  if [ -z "${MLRT_LIBRARIES:-}" ]; then
    rm -f /tmp/mlrt-cluster-libraries
    return 0
  fi
  python -m mlrt.libraries cluster >/dev/null \
    || die "the cluster libraries MLRT_LIBRARIES=$MLRT_LIBRARIES could not be installed (pip's message is above); fix the list, or the index (PIP_INDEX_URL, MLRT_PIP_CA_BUNDLE) or wheelhouse (MLRT_LIBRARIES_WHEELHOUSE) it comes from"
}

s3_credentials
mlflow_credentials
pip_settings
cluster_libraries
role="${1:-bash}"
case "$role" in
  master)
    shift; assemble_conf require-secret
    exec "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
      --host "${SPARK_MASTER_HOST:-$(hostname)}" --port "${SPARK_MASTER_PORT:-7077}" \
      --webui-port "${SPARK_MASTER_WEBUI_PORT:-8080}" "$@"
    ;;
  worker)
    shift; assemble_conf require-secret
    [ -n "${SPARK_MASTER_URL:-}" ] || die "worker needs SPARK_MASTER_URL (e.g. spark://spark-master:7077)"
    exec "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker \
      --webui-port "${SPARK_WORKER_WEBUI_PORT:-8081}" "$@" "$SPARK_MASTER_URL"
    ;;
  history)
    shift; assemble_conf
    exec "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.history.HistoryServer "$@"
    ;;
  driver)
    shift; ivy_settings
    exec "$SPARK_HOME/bin/spark-submit" \
      --conf "spark.driver.bindAddress=${SPARK_DRIVER_BIND_ADDRESS:?set by Spark on Kubernetes}" \
      --conf "spark.executorEnv.SPARK_DRIVER_POD_IP=$SPARK_DRIVER_BIND_ADDRESS" \
      --deploy-mode client "$@"
    ;;
  executor)
    shift
    java_opts=()
    while IFS= read -r opt; do java_opts+=("$opt"); done < <(env | grep '^SPARK_JAVA_OPT_' | sort -t_ -k4 -n | sed 's/^[^=]*=//')
    # Spark's launcher order (drivers, standalone executors): extraClassPath, the conf directory, the jars. The
    # image's class-data archive holds only when its pathing jar (extraClassPath) comes first.
    classpath="${SPARK_CLASSPATH:+$SPARK_CLASSPATH:}"
    [ -d "${SPARK_CONF_DIR:-}" ] && classpath="$classpath$SPARK_CONF_DIR:"
    classpath="$classpath$SPARK_HOME/jars/*"
    exec "$JAVA_HOME/bin/java" "${java_opts[@]}" \
      -Xms"${SPARK_EXECUTOR_MEMORY:?}" -Xmx"$SPARK_EXECUTOR_MEMORY" \
      -cp "$classpath${SPARK_DIST_CLASSPATH:+:$SPARK_DIST_CLASSPATH}" \
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "${SPARK_DRIVER_URL:?}" --executor-id "${SPARK_EXECUTOR_ID:?}" \
      --cores "${SPARK_EXECUTOR_CORES:?}" --app-id "${SPARK_APPLICATION_ID:?}" \
      --hostname "${SPARK_EXECUTOR_POD_IP:?}" --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" \
      --podName "${SPARK_EXECUTOR_POD_NAME:-}" "$@"
    ;;
  *)
    assemble_conf
    exec "$@"
    ;;
esac
