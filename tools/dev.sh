#!/usr/bin/env bash
# The project's two entry points, usable on a fresh machine:
#   tools/dev.sh demo   build a local Debian 12 systemd+SSH target and deploy OMERO.web to it
#   tools/dev.sh test   install what the tests need and run the whole suite
# Both create ./.venv from requirements.txt first. Extra arguments go to the command
# (pytest arguments for "test").
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r requirements.txt
    echo "$want" > "$stamp"
fi

command=${1:-}
shift || true
case "$command" in
    demo) exec .venv/bin/python -m tools.demo "$@" ;;
    test) exec .venv/bin/python -m pytest "$@" ;;
    bench) exec .venv/bin/python -m tools.benchmark "$@" ;;
    loadtest) exec .venv/bin/python -m tools.loadtest "$@" ;;
    *) echo "usage: tools/dev.sh demo|test|bench|loadtest [args]" >&2; exit 2 ;;
esac
