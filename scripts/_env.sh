# Shared by scripts/lab and scripts/test: a project virtualenv with jupyter-mlops installed editable.
# Sourced, not run. Honours PYTHON (default python3) and VENV (default .venv).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# pip, minus the warnings about local mirror folders that this machine's pip config names but may not have.
pip_quiet() { "$VENV/bin/python" -m pip "$@" 2> >(grep -v "WARNING: Location 'file:" >&2); }

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    step "Creating virtualenv $VENV"
    "$PYTHON" -m venv "$VENV"
    pip_quiet install -q --upgrade pip
  fi
  export PATH="$VENV/bin:$PATH"
}

# pip install -e with the given extras; builds the front end (hatch-jupyter-builder runs jlpm).
install_project() {
  local extras="$1"
  step "Installing jupyter-mlops[$extras] (builds the JupyterLab extension on first install)"
  (cd "$ROOT" && pip_quiet install -q -e ".[$extras]")
}
