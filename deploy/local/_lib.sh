# Shared helpers for the deploy/local scripts. Sourced, not executed.
# shellcheck shell=bash

LOCAL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$LOCAL_DIR/../.." && pwd)"
CITYCASE_CACHE="${CITYCASE_CACHE:-$REPO_ROOT/.cache}"
mkdir -p "$CITYCASE_CACHE"
# Absolute path: the Kafka config and pid checks embed it.
CITYCASE_CACHE="$(cd "$CITYCASE_CACHE" && pwd)"

say() { printf '[%s] %s\n' "${LOG_TAG:-local}" "$*"; }
die() { printf '[%s] ERROR: %s\n' "${LOG_TAG:-local}" "$*" >&2; exit 1; }

# True when something accepts TCP connections on 127.0.0.1:$1 (bash /dev/tcp, no nc needed).
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Replace $2 with the content of $1 only if it differs; returns 0 when the file changed.
install_if_changed() {
    local src="$1" dst="$2"
    if [[ -f "$dst" ]] && cmp -s "$src" "$dst"; then
        rm -f "$src"
        return 1
    fi
    mv -f "$src" "$dst"
    return 0
}
