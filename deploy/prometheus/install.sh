#!/bin/sh
# Install Prometheus and promtool from Debian's `prometheus` package, for the tests.
# Idempotent: a no-op when both binaries are already on the machine. There is no Docker engine
# in CI, so the integration tests run the Debian binaries directly.
set -eu

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    echo "prometheus already installed: $(prometheus --version 2>&1 | head -n 1)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
# The package list may be stale or absent on a fresh machine; refresh it only when needed.
if ! apt-cache show prometheus >/dev/null 2>&1; then
    $SUDO apt-get update
fi
# --no-install-recommends: the node exporter and other recommends are not needed for the tests.
# policy-rc.d-less containers have no init system; the package's service start is harmless there.
$SUDO apt-get install -y --no-install-recommends prometheus
prometheus --version 2>&1 | head -n 1
