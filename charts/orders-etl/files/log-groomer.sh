# Log groomer (rendered into the log-groomer sidecar's command): every INTERVAL_SECONDS,
# delete the files under LOG_DIR last modified more than RETENTION_DAYS days ago, and
# the empty folders untouched for 5 minutes (so a folder Airflow just created for a
# starting task stays). Exits at once on SIGTERM.
set -eu
trap 'kill "$sleeper" 2>/dev/null || true; exit 0' TERM INT
sleeper=
: "${LOG_DIR:?}" "${RETENTION_DAYS:?}" "${INTERVAL_SECONDS:?}"
minutes=$((RETENTION_DAYS * 1440))
echo "log-groomer: deleting files older than ${RETENTION_DAYS} days under ${LOG_DIR} every ${INTERVAL_SECONDS} s"
while true; do
  deleted=$(find "$LOG_DIR" -mindepth 1 -type f -mmin "+$minutes" -print -delete | wc -l)
  find "$LOG_DIR" -mindepth 1 -type d -empty -mmin +5 -delete
  if [ "$deleted" -gt 0 ]; then echo "log-groomer: deleted $deleted files"; fi
  sleep "$INTERVAL_SECONDS" &
  sleeper=$!
  wait "$sleeper"
done
