#!/usr/bin/env bash
# The environment lock, regenerated from pyproject.toml in one command:
#   scripts/lock.sh            rewrite uv.lock (what `uv sync` installs) and constraints.txt (the same
#                              versions for `pip install -e '.[test]' -c constraints.txt`); extra
#                              arguments go to `uv lock` (e.g. --upgrade-package NAME)
#   scripts/lock.sh --check    fail, saying so, when either file is out of date (offline; tests/test_lock.py)
set -euo pipefail
cd "$(dirname "$0")/.."

constraints() {
  uv export --frozen --all-extras --no-hashes --no-emit-project --no-header --format requirements-txt
}

if [[ "${1:-}" == "--check" ]]; then
  if ! out=$(uv lock --check --offline 2>&1); then
    echo "$out" >&2
    echo "uv.lock is out of date with pyproject.toml: run scripts/lock.sh and commit uv.lock and constraints.txt" >&2
    exit 1
  fi
  if ! diff <(constraints) constraints.txt >/dev/null; then
    echo "constraints.txt differs from uv.lock: run scripts/lock.sh and commit constraints.txt" >&2
    exit 1
  fi
  echo "uv.lock and constraints.txt match pyproject.toml"
  exit 0
fi

uv lock "$@"
constraints >constraints.txt
echo "wrote uv.lock and constraints.txt ($(grep -c '==' constraints.txt) pinned packages)"
