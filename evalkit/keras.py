"""A Keras callback that saves and evaluates checkpoints while training runs.

>>> from evalkit.keras import EvaluateCheckpoints
>>> cb = EvaluateCheckpoints("checkpoints/car", "out", every=1, heldout="heldout/car",
...                          sketches="human_sketches", image_size=256,
...                          tensorboard="logs/eval")
>>> generator.fit(pairs, epochs=20, callbacks=[cb])        # or your GAN loop's callbacks

At the end of every ``every``-th epoch it saves the generator in the seed's layout
(``tf.train.Checkpoint(generator=model)`` written by a ``CheckpointManager`` as
``run_dir/ckpt-<epoch>.index`` + ``.data-*`` and the ``checkpoint`` state file, what
``evalkit run`` discovers), then evaluates it into ``out`` exactly as ``evalkit run run_dir``
would (the same code path: :func:`evalkit.run`; already evaluated checkpoints are reused
from the store). ``background=True`` runs each evaluation as a separate ``evalkit run``
process so training does not wait (one at a time; the next epoch's evaluation starts when
the previous one ended; ``on_train_end`` waits for the last). ``tensorboard=DIR`` logs the
results like ``evalkit watch --tensorboard``. ``generator=`` names the model to save when the
model being fitted is not the generator itself (e.g. a GAN wrapper).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from evalkit.core.tf import tf, tf_keras


class EvaluateCheckpoints(tf_keras.callbacks.Callback):
    """Save the generator every ``every`` epochs in the seed layout and evaluate it."""

    def __init__(self, run_dir: str | Path, out: str | Path, every: int = 1,
                 generator: Any = None, background: bool = False,
                 tensorboard: str | Path | None = None, **run_options: Any):
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be >= 1 (epochs between evaluations), got {every}")
        self.run_dir, self.out = Path(run_dir), Path(out)
        self.every, self.generator, self.background = every, generator, background
        self.run_options = dict(run_options)
        if tensorboard is not None:
            self.run_options["tensorboard"] = str(tensorboard)
        self.run_options.setdefault("quiet", True)
        self._manager: tf.train.CheckpointManager | None = None
        self._proc: subprocess.Popen | None = None
        self.saved: list[Path] = []
        self.evaluated: list[int] = []  # epochs whose evaluation finished (exit 0)

    def _save(self, epoch: int) -> Path:
        if self._manager is None:
            model = self.generator if self.generator is not None else self.model
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._manager = tf.train.CheckpointManager(
                tf.train.Checkpoint(generator=model), str(self.run_dir), max_to_keep=None,
                checkpoint_name="ckpt")
        return Path(self._manager.save(checkpoint_number=epoch))

    def _argv(self) -> list[str]:
        from evalkit.api import _argv
        from evalkit.commands.run import run as command

        return _argv(command, [str(self.run_dir)], {"out": self.out, **self.run_options})

    def _wait(self) -> None:
        if self._proc is not None:
            code = self._proc.wait()
            if code == 0:
                self.evaluated.append(self._proc_epoch)
            else:
                print(f"evalkit: evaluation after epoch {self._proc_epoch} ended with exit "
                      f"{code} (see its messages above)", file=sys.stderr)
            self._proc = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        number = epoch + 1  # Keras counts from 0, checkpoints from 1
        if number % self.every:
            return
        self.saved.append(self._save(number))
        if self.background:
            self._wait()
            self._proc_epoch = number
            self._proc = subprocess.Popen([sys.executable, "-m", "evalkit.cli", "run",
                                           *self._argv()])
            return
        from evalkit.api import EvalkitError, run

        try:
            run(self.run_dir, out=self.out, **self.run_options)
            self.evaluated.append(number)
        except EvalkitError as exc:  # a failed evaluation must not stop training
            print(f"evalkit: evaluation after epoch {number} failed: {exc}", file=sys.stderr)

    def on_train_end(self, logs: dict | None = None) -> None:
        self._wait()
