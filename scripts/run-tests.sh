#!/usr/bin/env bash
# The README's test command (`make test`) runs this: it brings up what the tests need (the local
# Kafka broker unless KAFKA_BOOTSTRAP_SERVERS is set, and Prometheus from Debian's package), runs
# every test, and stops the broker again if it started it. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}

sh deploy/prometheus/install.sh

started_broker=0
if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
    if ! "$PY" -m stream.broker status | grep -q "running, pid"; then
        started_broker=1
    fi
    "$PY" -m stream.broker up
    export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:${XORSTREAM_KAFKA_PORT:-9092}
fi
cleanup() {
    if [ "$started_broker" = 1 ]; then "$PY" -m stream.broker down || true; fi
}
trap cleanup EXIT

"$PY" -m pytest tests "$@"
