#!/usr/bin/env bash
# CI: run the release gate on the shipped example's evaluation, so `evalkit gate` and
# `evalkit baseline` are exercised on every change.
#
#   scripts/ci_gate_example.sh DEMO_OUT      # DEMO_OUT from `evalkit demo --out DEMO_OUT`
#
# Writes into DEMO_OUT: baseline.json (person/ckpt-4 and gemstone/ckpt-3 recorded as
# stand-ins for the deployed checkpoints), gate.xml (JUnit), gate.md (Markdown, also appended to $GITHUB_STEP_SUMMARY
# when set) and gate.json. Exit: the gate's code (0 pass, 1 a rule failed, 2 bad
# config/inputs), or 1 when the self-check below finds the gate blind to a regression.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: scripts/ci_gate_example.sh DEMO_OUT}
EVALKIT=${EVALKIT:-.venv/bin/evalkit}
PYTHON=${PYTHON:-.venv/bin/python}
CONFIG=examples/ci/evalkit.toml

# 1. The release gate: each domain's selected checkpoint (`evalkit demo` writes
#    selection.json) against the bar and against the "deployed" one.
"$EVALKIT" baseline "$OUT" --checkpoint person/ckpt-4 --checkpoint gemstone/ckpt-3 \
  --write "$OUT/baseline.json"
rc=0
"$EVALKIT" gate "$OUT" --config "$CONFIG" --baseline "$OUT/baseline.json" \
  --junit "$OUT/gate.xml" --markdown "$OUT/gate.md" --json "$OUT/gate.json" || rc=$?
if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -f "$OUT/gate.md" ]; then
  cat "$OUT/gate.md" >> "$GITHUB_STEP_SUMMARY"
fi
[ "$rc" -eq 0 ] || { echo "ci_gate_example: the gate failed on the example (exit $rc)" >&2; exit "$rc"; }

# 2. Self-check: each domain's first epoch gated against its last one's baseline must fail
#    (exit 1) with regression failures in BOTH domains, or the gate has stopped catching
#    regressions.
"$EVALKIT" baseline "$OUT" --checkpoint person/ckpt-8 --checkpoint gemstone/ckpt-6 \
  --write "$OUT/selfcheck-baseline.json" >/dev/null
rc=0
"$EVALKIT" gate "$OUT" --config "$CONFIG" --baseline "$OUT/selfcheck-baseline.json" \
  --checkpoint person/ckpt-1 --checkpoint gemstone/ckpt-1 \
  --json "$OUT/selfcheck-gate.json" >/dev/null || rc=$?
if [ "$rc" -ne 1 ]; then
  echo "ci_gate_example: self-check expected exit 1 for ckpt-1 vs the last epoch, got $rc" >&2
  exit 1
fi
"$PYTHON" - "$OUT/selfcheck-gate.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
for domain, d in doc["domains"].items():
    bad = [r["rule"] for r in d["rules"] if r["status"] == "failed" and "regression" in r["kind"]]
    if not bad:
        sys.exit(f"ci_gate_example: self-check found no regression failure in {domain}")
    print(f"ci_gate_example: self-check ok ({domain}: ckpt-1 vs the last epoch fails "
          f"{len(bad)} regression rules)")
PY
