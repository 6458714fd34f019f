#!/usr/bin/env bash
# Stop the local backing services. Data is kept (Kafka: `kafka.sh reset` to wipe).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rc=0
# Keep going if one stop fails, so the other service is still stopped.
echo "[local] kafka..."
"$here/kafka.sh" down || rc=1
echo "[local] postgres..."
"$here/postgres.sh" down || rc=1
echo "[local] down"
exit "$rc"
