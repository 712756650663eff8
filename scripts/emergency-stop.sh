#!/usr/bin/env bash
# scripts/emergency-stop.sh "reason" (runbook 7.1): halt all outreach.
#
# Runs `cerniq emergency stop --reason "$1"`, which in one step: stops every send (each worker
# checks the stop before every vendor call), deactivates the sequences, pauses the phones, pauses
# the dispatcher and the send queues, posts the Slack notice and writes the audit log.
set -euo pipefail

if [ $# -lt 1 ] || [ -z "${1// /}" ]; then
  echo "usage: $0 \"reason\"" >&2
  exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -n "${CERNIQ_BIN:-}" ]; then
  cerniq="$CERNIQ_BIN"
elif [ -x "$here/../.venv/bin/cerniq" ]; then
  cerniq="$here/../.venv/bin/cerniq"
elif command -v cerniq >/dev/null 2>&1; then
  cerniq="$(command -v cerniq)"
else
  echo "cerniq not found: install the package or set CERNIQ_BIN" >&2
  exit 127
fi

echo "!!! EMERGENCY STOP INITIATED !!!"
echo "Time: $(date)"
echo "Reason: $1"

"$cerniq" emergency stop --reason "$1"

echo "=== System Stopped ==="
echo "To resume, run: ./scripts/emergency-resume.sh"
