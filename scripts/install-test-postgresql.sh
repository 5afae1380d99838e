#!/bin/sh
# The throwaway PostgreSQL of the tests (tests/pg_support.py): Debian's server binaries, initdb
# and pg_ctl. The tests start their own server in a temporary folder (unix socket, no TCP port);
# the cluster the package may create is not used.
set -eu
# Installing needs root: as another user it asks through sudo (root itself may have no sudo).
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql
fi
ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null || command -v initdb
