#!/bin/bash
# The Python package's tests in a fresh venv: builds the bindings with maturin from the package
# registry (`pip install ./python`), then runs pytest. Usage: python/ci.sh (from anywhere).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=$(mktemp -d)/venv
trap 'rm -rf "$(dirname "$venv")"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install -q numpy pytest "$here"
# run outside python/ so that the installed package, not the source folder, is imported
cd "$(dirname "$venv")" && "$venv/bin/pytest" -q -p no:cacheprovider "$here/tests"
