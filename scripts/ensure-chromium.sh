#!/usr/bin/env bash
# The browser tests drive Debian's chromium (never a downloaded browser). Install it if missing.
set -eu
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
[ -x /usr/bin/chromium ] || { echo "ERROR: /usr/bin/chromium is missing: apt-get install chromium" >&2; exit 1; }
