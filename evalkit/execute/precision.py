"""Generator precision: ``fp32`` (the default, what is served) or ``bf16`` screening.

``--precision bf16`` runs the seed generator with Keras' ``mixed_bfloat16`` policy
(bfloat16 compute, float32 weights and output). It is faster only where the hardware has
bfloat16 arithmetic (x86 ``avx512_bf16`` / ``amx_bf16``, or a GPU of compute capability
>= 8.0); elsewhere TensorFlow emulates it, slower than fp32, so evalkit refuses (exit 2).

A bf16 value is not the served model's value (the issue measured 40-60 % of served pixels
changed on random weights), so bf16 is a different evaluation identity everywhere:

* the generated outputs are cached under a different key (:func:`cache_key`),
* every family's metric setting carries ``precision: bf16`` (so fp32 and bf16 values are
  never taken one for the other; switching recomputes), and
* every value has the flag ``precision: "bf16"``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PRECISIONS = ("fp32", "bf16")
_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def bf16_unsupported() -> str | None:
    """Why bfloat16 would not be fast here, or None when the CPU or a GPU supports it."""
    try:
        flags = set()
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags.update(line.split(":", 1)[1].split())
                break
        if any(f in flags for f in _CPU_FLAGS):
            return None
    except OSError:
        pass
    try:
        from evalkit.core.tf import tf

        for gpu in tf.config.list_physical_devices("GPU"):
            cc = tf.config.experimental.get_device_details(gpu).get("compute_capability")
            if cc and tuple(cc) >= (8, 0):
                return None
    except Exception:  # no TF GPU support: the CPU answer stands
        pass
    return ("this machine has no bfloat16 arithmetic (CPU flags avx512_bf16/amx_bf16, or a "
            "GPU of compute capability >= 8.0): TensorFlow would emulate it, slower than "
            "fp32")


def check_precision(precision: str) -> None:
    """Raise ValueError (a usage error) for an unknown precision or bf16 where it is not
    supported; the message says what to do."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}': use one of {', '.join(PRECISIONS)}")
    if precision == "bf16":
        why = bf16_unsupported()
        if why:
            raise ValueError(f"--precision bf16 refused: {why}; run without it (fp32)")


def cache_key(checkpoint_hash: str, precision: str) -> str:
    """The output cache key of a checkpoint's outputs at ``precision`` (fp32: the hash)."""
    if precision == "fp32":
        return checkpoint_hash
    return hashlib.sha256(f"{checkpoint_hash}:{precision}".encode()).hexdigest()
