#!/usr/bin/env bash
# Headless Chromium for the browser tests (tests/browser), from Debian's packages: Playwright
# drives it as it is, and never downloads a browser build of its own. Idempotent: nothing to do
# when /usr/bin/chromium is there. A CJK font comes along, so the console's Chinese labels render
# in the screenshots instead of as boxes.
#
#   deploy/local/chromium.sh
set -euo pipefail
LOG_TAG=chromium
# shellcheck source=deploy/local/_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"

if [[ -x /usr/bin/chromium ]] && fc-list :lang=zh 2>/dev/null | grep -q .; then
    exit 0
fi
[[ $EUID -eq 0 ]] || die "Chromium is missing and installing it needs root: apt-get install chromium fonts-wqy-microhei"
say "installing Chromium and a CJK font (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-wqy-microhei fontconfig >/dev/null
[[ -x /usr/bin/chromium ]] || die "apt-get finished but /usr/bin/chromium is not there"
say "$(/usr/bin/chromium --version 2>/dev/null || echo chromium installed)"
