#!/usr/bin/env bash
# scripts/emergency-resume.sh [--yes] [--pause SECONDS] (runbook 7.2): resume after a stop.
#
# Asks whether the issue has been resolved (skip with --yes), then runs
# `cerniq emergency resume`: the dispatcher and queues resume, then the phones paused by the stop
# one by one, 5 s apart (--pause), and the team is notified. Sequences stay inactive.
set -euo pipefail

yes=0
pause=5
while [ $# -gt 0 ]; do
  case "$1" in
    -y|--yes) yes=1; shift ;;
    --pause) pause="$2"; shift 2 ;;
    *) echo "usage: $0 [--yes] [--pause SECONDS]" >&2; exit 2 ;;
  esac
done

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

echo "=== Resuming Outreach System ==="

# 1. Verify all clear
if [ "$yes" -ne 1 ]; then
  read -r -p "Has the issue been resolved? (yes/no): " confirmed
  if [ "$confirmed" != "yes" ]; then
    echo "Resume cancelled"
    exit 1
  fi
fi

# 2-6. Dispatcher, phones one by one, notice (sequences stay inactive)
"$cerniq" emergency resume --yes --pause "$pause"

echo "=== System Resumed ==="
