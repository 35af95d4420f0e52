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
# The optional extras too, so that every test runs (CI installs the same): ONNX models,
# TensorBoard and MLflow exports.
.venv/bin/python -m pip install -q -e ".[dev,onnx,tensorboard,mlflow]"
# tf-keras with --no-deps: its metadata asks for the full `tensorflow` package, which
# would be installed over tensorflow-cpu.
.venv/bin/python -m pip install -q --no-deps "tf-keras==2.21.0"
echo "evalkit installed in .venv ($(.venv/bin/evalkit --version))"
