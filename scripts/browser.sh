#!/usr/bin/env bash
# Install Debian's chromium for the admin UI's browser tests (tests/browser) when it is missing.
# Playwright cannot download its own browsers here; the tests point it at /usr/bin/chromium.
# When it cannot be installed this says so loudly; the browser tests then fail with the same message.
set -uo pipefail

if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
echo "browser tests: installing chromium (apt-get)"
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo -n"; fi
if ! { $SUDO apt-get install -y --no-install-recommends chromium >/tmp/routeiq-chromium-install.log 2>&1 \
  || { $SUDO apt-get update >/dev/null 2>&1 && $SUDO apt-get install -y --no-install-recommends chromium \
    >/tmp/routeiq-chromium-install.log 2>&1; }; }; then
  echo "!!! browser tests: chromium could NOT be installed (see /tmp/routeiq-chromium-install.log);" >&2
  echo "!!! tests/browser will FAIL until it is (apt-get install chromium)." >&2
fi
exit 0
