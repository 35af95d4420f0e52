"""TensorFlow and legacy Keras (tf-keras), imported once and safely.

The seed's checkpoints use tf-keras (Keras 2) object names; Keras 3 writes ``_kernel`` keys
that cannot restore them (DESIGN.md), so evalkit always uses the ``tf_keras`` package
directly instead of ``tf.keras``. The import is quiet unless ``--verbose``
(:mod:`evalkit.core.quiet`).
"""

from __future__ import annotations

import os

from evalkit.core import quiet
from evalkit.core.faults import signals_deferred
from evalkit.core.import_order import make_import_order_safe

make_import_order_safe()
quiet.quiet_native_logs()
# tf.keras = tf_keras (what evalkit uses anyway): `import tensorflow` then loads tf_keras's
# optimizers eagerly instead of Keras 3's, whose import pulls in pandas, matplotlib,
# scikit-learn and scipy (~1.3 s of TensorFlow's ~3.4 s import). Keras 3 stays available as
# `import keras` (zip .keras files, evalkit.inputs.sources.exported).
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

# Ctrl-C/kill during the import are delivered after it (signals_deferred's docstring)
with signals_deferred(), quiet.native_stderr_hidden():
    import tensorflow as tf  # noqa: E402

    try:
        import tf_keras  # noqa: E402
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "evalkit needs the tf-keras package (Keras 2) to build the seed generator. "
            "Install it with: pip install tf-keras==2.21.0 (it requires the `tensorflow` "
            "package, not tensorflow-cpu)"
        ) from exc
    # Find the devices now, still hidden: the `tensorflow` wheel (CUDA-capable) logs "failed
    # call to cuInit" at ERROR level on a machine without a GPU the first time it looks.
    # Listing physical devices does not fix the device setup (--device still can).
    tf.config.list_physical_devices()

quiet.quiet_python_loggers()

__all__ = ["tf", "tf_keras"]
