#!/usr/bin/env bash
# npm run notebook [-- --allow-root] [-- --lab]: open the lessons in Jupyter with the kit's own kernelspec.
#
# Uses the Python in $KIT_PYTHON (default /usr/bin/python3, the one `npm test` uses, else python3 on PATH). Starts the
# classic Notebook when `notebook` is importable, else JupyterLab (or JupyterLab first with --lab). When neither is
# importable it prints the exact install line and exits 1. Jupyter refuses to run as root; as root this says how to
# allow it, and passes --allow-root when you ask (`npm run notebook -- --allow-root` or KIT_ALLOW_ROOT=1).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

PY="${KIT_PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY="$(command -v python3 || true)"; fi
fi
if [ -z "$PY" ]; then
  echo "npm run notebook: no python3 found. Install Python 3 and Jupyter, e.g.: apt-get install jupyter-notebook" >&2
  exit 1
fi

allow_root="${KIT_ALLOW_ROOT:-0}"
prefer=notebook
pass=()
for a in "$@"; do
  case "$a" in
    --allow-root) allow_root=1 ;;
    --lab) prefer=jupyterlab ;;
    *) pass+=("$a") ;;
  esac
done

has() { "$PY" -c "import $1" >/dev/null 2>&1; }
app=""
if [ "$prefer" = jupyterlab ] && has jupyterlab; then app=jupyterlab
elif has notebook; then app=notebook
elif has jupyterlab; then app=jupyterlab
fi

if [ -z "$app" ]; then
  echo "npm run notebook: neither Jupyter Notebook nor JupyterLab is importable by $PY." >&2
  if [ "$PY" = /usr/bin/python3 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Install the classic Notebook from Debian/Ubuntu (what this kit is tested with):" >&2
    echo "    $( [ "$(id -u)" = 0 ] || echo 'sudo ' )apt-get install -y jupyter-notebook" >&2
    echo "or with pip into that Python:" >&2
  else
    echo "Install it into that Python:" >&2
  fi
  echo "    $PY -m pip install notebook" >&2
  echo "(set KIT_PYTHON=/path/to/python3 to use another Python)" >&2
  exit 1
fi

if [ "$(id -u)" = 0 ]; then
  if [ "$allow_root" = 1 ]; then
    pass+=(--allow-root)
  else
    echo "npm run notebook: you are root, and Jupyter refuses to start as root unless told to." >&2
    echo "If that is what you want (a container, a throwaway VM), run one of:" >&2
    echo "    npm run notebook -- --allow-root" >&2
    echo "    KIT_ALLOW_ROOT=1 npm run notebook" >&2
    exit 1
  fi
fi

export JUPYTER_PATH="$ROOT/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}"
echo "starting $app with $PY (kernel: tslab-kit from $ROOT/jupyter)"
exec "$PY" -m "$app" --notebook-dir="$ROOT/notebooks" "${pass[@]+"${pass[@]}"}"
