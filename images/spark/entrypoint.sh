#!/usr/bin/env bash
# Entrypoint of the orders-etl Spark image: the container contract of Spark on Kubernetes.
#
# spark-submit --master k8s://... (directly, through the kubeflow spark-operator, or through
# the project's stand-in controller) starts pods from this image with these arguments:
#
#   driver --properties-file /opt/spark/conf/spark.properties --class <main> <resource> [args]
#       env SPARK_DRIVER_BIND_ADDRESS (the pod IP), SPARK_CONF_DIR, PYSPARK_* ...
#       -> spark-submit in client mode inside the pod, bound to the pod IP; executors learn
#          the driver's IP as SPARK_DRIVER_POD_IP.
#   executor
#       env SPARK_DRIVER_URL, SPARK_EXECUTOR_ID, SPARK_EXECUTOR_CORES, SPARK_EXECUTOR_MEMORY,
#       SPARK_APPLICATION_ID, SPARK_EXECUTOR_POD_IP, SPARK_EXECUTOR_POD_NAME,
#       SPARK_RESOURCE_PROFILE_ID, SPARK_JAVA_OPT_<n> (ordered), SPARK_CLASSPATH (extra)
#       -> the JVM of KubernetesExecutorBackend, connecting back to the driver.
#
# Anything else runs as given (spark-submit, python -m spark_operator_standin, bash ...).
# ORDERS_ETL_ENTRYPOINT_DRY_RUN=1 prints the command instead of running it (tests).
set -euo pipefail

SPARK_HOME=${SPARK_HOME:-/opt/spark}
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java

run() {
  if [[ ${ORDERS_ETL_ENTRYPOINT_DRY_RUN:-} == 1 ]]; then
    printf '%s\n' "$@"
    exit 0
  fi
  exec "$@"
}

# Spark may run under an arbitrary uid (OpenShift-style): Java and Hadoop want a user name.
if ! getent passwd "$(id -u)" >/dev/null 2>&1; then
  export SPARK_USER=${SPARK_USER:-spark}
fi

# IPv6 pod addresses must be bracketed where Spark builds host:port strings.
bracket() {
  if [[ $1 == *:* && $1 != \[* ]]; then printf '[%s]' "$1"; else printf '%s' "$1"; fi
}

# The executor's java options, in the order Spark numbered them.
java_opts=()
while IFS= read -r line; do
  [[ -n $line ]] && java_opts+=("${line#*=}")
done < <(env | grep -E '^SPARK_JAVA_OPT_[0-9]+=' | sort -t_ -k4 -n || true)

classpath="$SPARK_HOME/jars/*"
if [[ -n ${SPARK_CLASSPATH:-} ]]; then
  classpath="$classpath:$SPARK_CLASSPATH"
fi
if [[ -n ${SPARK_EXTRA_CLASSPATH:-} ]]; then
  classpath="$classpath:$SPARK_EXTRA_CLASSPATH"
fi
if [[ -n ${HADOOP_CONF_DIR:-} ]]; then
  classpath="$HADOOP_CONF_DIR:$classpath"
fi
if [[ -n ${SPARK_CONF_DIR:-} ]]; then
  classpath="$SPARK_CONF_DIR:$classpath"
elif [[ -d $SPARK_HOME/conf ]]; then
  classpath="$SPARK_HOME/conf:$classpath"
fi

case "${1:-}" in
  driver)
    shift
    : "${SPARK_DRIVER_BIND_ADDRESS:?the driver pod needs SPARK_DRIVER_BIND_ADDRESS (its pod IP)}"
    run "$SPARK_HOME/bin/spark-submit" \
      --conf "spark.driver.bindAddress=$SPARK_DRIVER_BIND_ADDRESS" \
      --conf "spark.executorEnv.SPARK_DRIVER_POD_IP=$SPARK_DRIVER_BIND_ADDRESS" \
      --deploy-mode client \
      "$@"
    ;;
  executor)
    shift
    for var in SPARK_DRIVER_URL SPARK_EXECUTOR_ID SPARK_EXECUTOR_CORES SPARK_EXECUTOR_MEMORY \
      SPARK_APPLICATION_ID SPARK_EXECUTOR_POD_IP; do
      [[ -n ${!var:-} ]] || { echo "entrypoint: executor needs $var" >&2; exit 64; }
    done
    run "$JAVA" \
      "${java_opts[@]}" \
      "-Xms$SPARK_EXECUTOR_MEMORY" "-Xmx$SPARK_EXECUTOR_MEMORY" \
      -cp "$classpath" \
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "$SPARK_DRIVER_URL" \
      --executor-id "$SPARK_EXECUTOR_ID" \
      --cores "$SPARK_EXECUTOR_CORES" \
      --app-id "$SPARK_APPLICATION_ID" \
      --hostname "$(bracket "$SPARK_EXECUTOR_POD_IP")" \
      --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" \
      --podName "${SPARK_EXECUTOR_POD_NAME:-$(hostname)}" \
      "$@"
    ;;
  "")
    run "$SPARK_HOME/bin/spark-submit" --version
    ;;
  *)
    run "$@"
    ;;
esac
