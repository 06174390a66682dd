#!/usr/bin/env bash
# Entrypoint of the orders-etl Airflow image: one Airflow component per container.
#
#   <image> api-server | scheduler | dag-processor | triggerer   airflow <component> [args]
#   <image> worker [args]            airflow celery worker [args]
#   <image> celery ... | db ... | pools ... | jobs ... | version | <any airflow subcommand>
#   <image> airflow ...              the airflow CLI as given
#   <image> <other command> ...      run as is (python, bash, KubernetesExecutor task pods,
#                                    which pass `python -m airflow.sdk...` as args)
#
# The chart sets `command:` itself (["airflow", "scheduler"], ...), which bypasses this
# script; tini stays PID 1 only when the image's own ENTRYPOINT is used.
set -euo pipefail

if [[ $# -eq 0 ]]; then
  set -- version
fi

case "$1" in
  worker)
    shift
    exec airflow celery worker "$@"
    ;;
  api-server | scheduler | dag-processor | triggerer | celery | db | pools | jobs | dags | \
    tasks | config | connections | variables | users | version | info | cheat-sheet | \
    standalone | providers | plugins | kubernetes | assets | backfill | rotate-fernet-key)
    exec airflow "$@"
    ;;
  *)
    exec "$@"
    ;;
esac
