#!/usr/bin/env bash
# The tools that check the deployment manifests offline (tests/deploy/test_manifests.py):
# Debian's docker-compose (1.29, `docker-compose config`: the docker CLI here has no compose
# plugin and there is no engine), and kustomize at a pinned version, built from its Go module
# into $CITYCASE_CACHE/bin (there is no Debian package, and a prebuilt binary cannot be
# downloaded here). Idempotent: with both there at the right version it does nothing, in well
# under a second.
#
#   deploy/local/manifest-tools.sh
set -euo pipefail
LOG_TAG=manifest-tools
# shellcheck source=deploy/local/_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"

# v5.8.1: the newest kustomize whose module builds with Go 1.26 (v5.8.3 asks for Go 1.27).
KUSTOMIZE_VERSION=v5.8.1
KUSTOMIZE="$CITYCASE_CACHE/bin/kustomize"

if ! command -v docker-compose >/dev/null; then
    [[ $EUID -eq 0 ]] || die "docker-compose is missing and installing it needs root: apt-get install docker-compose"
    say "installing docker-compose (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
    command -v docker-compose >/dev/null || die "apt-get finished but docker-compose is not there"
fi

if [[ ! -x "$KUSTOMIZE" || "$("$KUSTOMIZE" version 2>/dev/null)" != "$KUSTOMIZE_VERSION" ]]; then
    command -v go >/dev/null || die "kustomize $KUSTOMIZE_VERSION is built with Go (1.24 or newer), which is missing"
    say "building kustomize $KUSTOMIZE_VERSION into $CITYCASE_CACHE/bin (go install, about a minute)"
    mkdir -p "$CITYCASE_CACHE/bin"
    # GOTOOLCHAIN=local: build with the Go that is here rather than fetch another.
    GOBIN="$CITYCASE_CACHE/bin" GOTOOLCHAIN=local \
        go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
    [[ "$("$KUSTOMIZE" version)" == "$KUSTOMIZE_VERSION" ]] || die "the kustomize built is not $KUSTOMIZE_VERSION"
    say "kustomize $KUSTOMIZE_VERSION ready"
fi
