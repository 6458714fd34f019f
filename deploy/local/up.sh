#!/usr/bin/env bash
# Start the local backing services for citycase (PostgreSQL + Kafka). Idempotent:
# a second run when everything is up only re-checks, in about a second.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
start=$SECONDS
echo "[local] postgres..."
"$here/postgres.sh" up
echo "[local] kafka..."
"$here/kafka.sh" up
echo "[local] up ($((SECONDS - start))s). Stop with deploy/local/down.sh"
