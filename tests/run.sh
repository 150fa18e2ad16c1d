#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine, then run them:
#   1. the services the tests start themselves: headless Chromium (dashboard tests) and
#      PostgreSQL (studies on a server), from Debian's packages when missing;
#   2. a virtual environment (.venv) with archsearch and its test extras;
#   3. pytest, with any arguments given (default: the fast suite; `tests/run.sh -m slow`
#      for the end-to-end runs).
# `.ci/run` calls this same script, so the README's test command is the one CI proves.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null; then
        echo "error: the tests need ${missing[*]} (Chromium at /usr/bin/chromium, PostgreSQL server binaries);" \
             "install them with your package manager" >&2
        exit 2
    fi
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e '.[test]'
exec .venv/bin/python -m pytest "$@"
