#!/usr/bin/env bash
# The checks behind `make test`: notebooks clean, notebooks and package in sync, then every test
# (notebook tests included) under pytest, whose summary line closes the output.
set -euo pipefail
cd "$(dirname "$0")/.."

snapshot() { find nbs pipeline nowcast -type f ! -path '*__pycache__*' ! -path '*.ipynb_checkpoints*' -print0 | sort -z | xargs -0 sha256sum; }

before=$(snapshot)
nbdev-clean >/dev/null
nbdev-clean --fname pipeline >/dev/null
if [ "$(snapshot)" != "$before" ]; then
  echo "FAIL: unstripped notebooks: nbdev-clean changed these files:" >&2
  diff <(echo "$before") <(snapshot) >&2 || true
  exit 1
fi
nbdev-export >/dev/null
if [ "$(snapshot)" != "$before" ]; then
  echo "FAIL: notebooks and nowcast/ are not in sync: nbdev-export changed these files:" >&2
  diff <(echo "$before") <(snapshot) >&2 || true
  exit 1
fi
echo "notebooks clean and in sync with nowcast/"

# Two worker processes (pytest-xdist): the suite is mostly waiting on subprocesses, files and small torch runs, and
# takes 10 minutes on 2 cores instead of 17 in one process; the slowest tests are listed before the summary line.
exec python -m pytest -q -p no:cacheprovider -n 2 --durations=15 "$@"
