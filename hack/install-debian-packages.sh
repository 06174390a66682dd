#!/usr/bin/env bash
# Installs the Debian packages the local data services run: PostgreSQL (Airflow metadata,
# Iceberg JDBC catalog), Redis (Celery broker) and PgBouncer (the chart's generated config
# is tested against it). Java 17 and Maven are expected on the
# machine (Kafka and the Spark jars); they are checked, not installed.
# `hack/install-debian-packages.sh images` installs podman, runc and debootstrap (the
# image builds) instead; `... node` the real node's runtime (containerd, runc, the CNI
# plugins, iptables and conntrack for kube-proxy). Idempotent: does nothing when every package is already there.
set -euo pipefail

# `images`: what hack/build-images.sh needs to build and run images daemonless instead.
if [[ ${1:-} == images ]]; then
  PACKAGES=(podman runc debootstrap containernetworking-plugins)
elif [[ ${1:-} == node ]]; then
  PACKAGES=(containerd runc containernetworking-plugins iptables conntrack)
else
  PACKAGES=(postgresql redis-server pgbouncer)
fi
missing=()
for pkg in "${PACKAGES[@]}"; do
  [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == "install ok installed" ]] || missing+=("$pkg")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "[install-debian-packages] installing: ${missing[*]}" >&2
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO=sudo
  $SUDO apt-get update -qq
  # The packages' own services are not wanted: the project starts its own instances.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
for cmd in java mvn setpriv; do
  command -v "$cmd" >/dev/null || { echo "[install-debian-packages] '$cmd' is missing (OpenJDK 17, Maven and util-linux are expected)" >&2; exit 1; }
done
