#!/usr/bin/env bash
# Debian's chromium for the browser test (tests/test_serve_browser.py). Idempotent and quiet:
# does nothing when chromium is already installed. Playwright drives this binary; it never
# downloads a browser of its own (`playwright install` is not used anywhere).
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "Installing Debian's chromium for the browser test..." >&2
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq chromium </dev/null >/dev/null
command -v chromium >/dev/null
