#!/usr/bin/env bash
# One-step set-up on a fresh machine: a virtual environment in .venv with evalkit and
# everything it needs. Safe to run again (pip skips what is installed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned: 2.14.1 is the newest our pip constraint file allows.
.venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
# An older set-up installed tensorflow-cpu; `tensorflow` (which tf-keras requires) replaces
# it, and the two must not share one site-packages.
if .venv/bin/python -m pip show -q tensorflow-cpu >/dev/null 2>&1; then
  .venv/bin/python -m pip uninstall -q -y tensorflow-cpu tensorflow
fi
# The optional extras too, so that every test runs (CI installs the same): ONNX models,
# TensorBoard and MLflow exports, Ray (--executor ray).
.venv/bin/python -m pip install -q -e ".[dev,onnx,tensorboard,mlflow,ray]"
echo "evalkit installed in .venv ($(.venv/bin/evalkit --version))"
