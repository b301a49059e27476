#!/usr/bin/env bash
# Serves the test suite's fake policy (ExternalClientHarness) and runs the real openpi client
# against it. Usage: tools/server/run_openpi_client_check.sh [extra args for openpi_client_check.py]
# API_KEY=k makes the server require it and the client send it.
# Needs /work/venvs/openpi (pip install openpi-client msgpack) or PYTHON=... pointing at one.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-/work/venvs/openpi/bin/python}
PORT=${PORT:-18777}
STOP=$(mktemp -u /tmp/pi0_e2e_stop.XXXXXX)
LOG=$(mktemp /tmp/pi0_e2e_log.XXXXXX)
PIDFILE=$(mktemp -u /tmp/pi0_e2e_pid.XXXXXX)
swift build --build-tests >/dev/null
env PI0_SERVER_E2E_PORT=$PORT PI0_SERVER_E2E_STOP_FILE=$STOP PI0_SERVER_E2E_PID_FILE=$PIDFILE PI0_SERVER_E2E_SECONDS=600 ${API_KEY:+PI0_SERVER_E2E_API_KEY=$API_KEY} \
  swift test --skip-build --filter ExternalClientHarness.testServeFakePolicyForExternalClients >"$LOG" 2>&1 &
RUNNER=$!
trap 'touch "$STOP"; wait $RUNNER || true; rm -f "$STOP" "$PIDFILE"; echo "server log: $LOG"' EXIT
SERVER_PID=
for _ in $(seq 1 150); do
  SERVER_PID=$(cat "$PIDFILE" 2>/dev/null || true)
  [ -n "$SERVER_PID" ] && curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
echo "healthz: $(curl -s "http://127.0.0.1:$PORT/healthz")"
"$PYTHON" tools/server/openpi_client_check.py --port "$PORT" --expect tools/server/fake_policy_expected.json \
  --fake-policy-checks ${SERVER_PID:+--server-pid "$SERVER_PID"} ${API_KEY:+--api-key "$API_KEY"} "$@"
