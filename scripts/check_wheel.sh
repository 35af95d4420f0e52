#!/usr/bin/env bash
# The package as a user installs it (issue 28): build the wheel, install it into a FRESH
# virtual environment with plain pip (no editable install, no --no-deps step), then run
# `evalkit run` on a small part of the shipped example from outside the checkout.
#
#   scripts/check_wheel.sh [VENV_DIR]      # default: a new temporary folder
#
# Prints the venv's size and its largest packages. Exit: non-zero if any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PY=${PYTHON:-python3}
DIST=$(mktemp -d)
if [ -n "${1:-}" ]; then
  VENV=$1
  trap 'rm -rf "$DIST"' EXIT
else  # a temporary venv (about 8 GB) is removed again at the end
  TMPV=$(mktemp -d)
  VENV=$TMPV/venv
  trap 'rm -rf "$DIST" "$TMPV"' EXIT
fi
.venv/bin/python -m pip wheel -q --no-deps -w "$DIST" .
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch is capped at 2.14.1 on our machines (pip constraint file); the wheel pins the same.
"$VENV/bin/python" -m pip install -q "$DIST"/evalkit-*.whl
echo "installed: $("$VENV/bin/evalkit" --version) in $VENV ($(du -sh "$VENV" | cut -f1))"
# (awk stops printing after 6 but reads on: `head` would end the pipe early, a SIGPIPE
# that pipefail turns into a failed script)
du -s "$VENV"/lib/python3*/site-packages/* 2>/dev/null | sort -rn \
  | awk -v venv="$VENV" 'NR <= 6 {sub(venv "/lib/python3[^/]*/site-packages/", "", $2);
                                  printf "  %6.0f MB  %s\n", $1 / 1024, $2}'

WORK=$(mktemp -d)
cd "$WORK"   # not the checkout: the installed package, not the source tree
"$VENV/bin/evalkit" run "$REPO/examples/checkpoints/gemstone" \
  --heldout "$REPO/examples/heldout/gemstone" --out "$WORK/out" --image-size 32 --limit 4 \
  --no-report --quiet
"$VENV/bin/python" -c "import evalkit, sys; df = evalkit.results('$WORK/out'); \
print('wheel run:', df.checkpoint.nunique(), 'checkpoints,', len(df), 'values'); \
sys.exit(0 if df.checkpoint.nunique() >= 2 else 1)"
