"""Import-order safety for TensorFlow beside PyTorch (DESIGN.md section 1).

torch's CUDA wheels ship ``triton``; loading triton's native library *after* TensorFlow 2.21
kills the process with a segfault, and torchvision / torchmetrics import it through
``torch._dynamo``. evalkit therefore settles the order once, when it is imported:

* triton already loaded: nothing to do (it came first, which is safe);
* TensorFlow already loaded, triton not: triton is blocked (``sys.modules['triton'] = None``),
  so ``import triton`` raises ImportError and torch treats it as absent (it is only used
  for GPU kernels, never on evalkit's CPU paths);
* neither loaded: triton is imported just before TensorFlow, whoever imports it (a
  ``sys.meta_path`` hook that fires on ``import tensorflow``; it finds nothing itself). So
  commands that never import TensorFlow do not pay triton's import (~0.2-0.6 s) either.

This makes evalkit immune to its caller's import order (tests/test_import_order.py).
"""

from __future__ import annotations

import sys

_done = False


def make_import_order_safe() -> None:
    """Apply the rule above once per process."""
    global _done
    if _done:
        return
    _done = True
    if "triton" in sys.modules:
        return
    if "tensorflow" in sys.modules:
        sys.modules["triton"] = None  # type: ignore[assignment]
        return
    sys.meta_path.insert(0, _TritonBeforeTensorFlow())


def _import_triton() -> None:
    try:
        import triton  # noqa: F401
    except Exception:  # absent or broken: torch copes without it
        pass


class _TritonBeforeTensorFlow:
    """Meta-path finder: on the first ``import tensorflow``, imports triton (unless loaded);
    it never finds a module itself, so the normal finders then import TensorFlow."""

    def __init__(self) -> None:
        self.fired = False

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname == "tensorflow" and not self.fired:
            self.fired = True
            if "triton" not in sys.modules:
                _import_triton()
        return None
