#!/bin/sh
# The browser for the end-to-end web tests (tests/test_web_e2e.py): Debian's chromium,
# driven by the pip package `playwright` through executable_path=/usr/bin/chromium.
# Never run `playwright install`: no browser download is needed or wanted.
set -eu
# Installing needs root: as another user it asks through sudo (root itself may have no sudo).
if ! command -v chromium >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-dejavu-core
fi
chromium --version
