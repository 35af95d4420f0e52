"""Which checkpoints of a training run in progress are complete, and the polling loop.

Training saves a checkpoint every epoch: ``tf.train.Checkpoint.save`` writes the data
shards and the ``.index``, then rewrites the ``checkpoint`` state file (atomically) to name
the new checkpoint. A copy (rsync, cloud sync) may write the files in any order. A
checkpoint is **complete** when all of these hold on one poll:

1. the state file ``checkpoint`` in its folder names it, or names a newer checkpoint of the
   same prefix (older ones may have been dropped from its list); a folder without a state
   file relies on tests 2-4 alone;
2. its ``.index`` and every ``.data-i-of-N`` shard exist;
3. every file's size and modification time are the same as on the previous poll;
4. every variable can be read back with TensorFlow's checkpoint reader (the index parses,
   each tensor's bytes are there and their CRC32C matches).

A checkpoint that fails 4 is never handed to the engine while it may still be being
written, so it is never recorded as failed because it was half-written. Only one that the
state file names and whose files stayed unchanged for :attr:`CompletenessTracker.give_up`
polls is handed over anyway: it is complete by the trainer's word yet unreadable, so the
engine records it as failed with its reason (one bad checkpoint never stops the watch).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.inputs.checkpoints.discover import CheckpointRef

STATE_FILE = "checkpoint"
# The state file is a two-field text proto (tf.train.CheckpointState); read by hand so that
# polling needs no TensorFlow and a file being replaced reads as "names nothing new".
_STATE_RE = re.compile(
    r'^\s*(?:model_checkpoint_path|all_model_checkpoint_paths)\s*:\s*"((?:[^"\\]|\\.)*)"',
    re.M)
_STEP_RE = re.compile(r"^(?P<base>.+)-(?P<step>\d+)$")


def state_file_names(folder: Path) -> list[str] | None:
    """Basenames of the checkpoints the state file in ``folder`` names (newest last, as
    TensorFlow writes them), or None when the folder has no state file."""
    try:
        text = (folder / STATE_FILE).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError:
        return []
    return [Path(m.group(1).replace('\\"', '"').replace("\\\\", "\\")).name
            for m in _STATE_RE.finditer(text)]


def named_by_state(ref: CheckpointRef, names: list[str]) -> bool:
    """Test 1: the state file names ``ref``, or a newer checkpoint of the same prefix."""
    base = ref.prefix.name
    if base in names:
        return True
    m = _STEP_RE.match(base)
    if m is None:
        return False
    for n in names:
        mn = _STEP_RE.match(n)
        if mn and mn.group("base") == m.group("base") and int(mn.group("step")) > ref.step:
            return True
    return False


def read_all_variables(prefix: Path) -> None:
    """Test 4: read every variable of a checkpoint (raises if any cannot be read)."""
    from evalkit.core.tf import tf

    reader = tf.train.load_checkpoint(str(prefix))
    for name in reader.get_variable_to_shape_map():
        reader.get_tensor(name)


def fingerprint(ref: CheckpointRef) -> tuple | None:
    """(name, size, mtime) of each file; None when one vanished between listing and stat."""
    try:
        return tuple((p.name, st.st_size, st.st_mtime_ns)
                     for p in ref.files for st in (p.stat(),))
    except OSError:
        return None


@dataclass
class CompletenessTracker:
    """Remembers what each poll saw; :meth:`check` says which checkpoints are complete.

    Attributes:
        read: test 4 (injectable for tests).
        give_up: polls with unchanged files after which a checkpoint that the state file
            names but that cannot be read is handed over to be recorded as failed.
    """

    read: Callable[[Path], None] = read_all_variables
    give_up: int = 3
    _seen: dict[str, tuple] = field(default_factory=dict)  # name -> fingerprint last poll
    _stable: dict[str, int] = field(default_factory=dict)  # name -> polls unchanged
    _done: dict[str, tuple] = field(default_factory=dict)  # name -> fingerprint handed over

    def check(self, refs: list[CheckpointRef]) -> tuple[list[CheckpointRef], dict[str, str],
                                                        bool]:
        """One poll. Returns the checkpoints that became complete since they were last
        handed over (new, or their files changed), the others with the reason they wait,
        and whether anything changed on disk since the previous poll."""
        ready: list[CheckpointRef] = []
        waiting: dict[str, str] = {}
        changed = False
        states: dict[Path, list[str] | None] = {}
        for ref in refs:
            fp = fingerprint(ref)
            previous = self._seen.get(ref.name)
            if fp is None or fp != previous:
                changed = True
                self._stable[ref.name] = 0
            else:
                self._stable[ref.name] = self._stable.get(ref.name, 0) + 1
            if fp is not None:
                self._seen[ref.name] = fp
            if fp is not None and self._done.get(ref.name) == fp:
                continue  # handed over already, unchanged since
            folder = ref.prefix.parent
            if folder not in states:
                states[folder] = state_file_names(folder)
            names = states[folder]
            if ref.problem:
                waiting[ref.name] = ref.problem
            elif names is not None and not named_by_state(ref, names):
                waiting[ref.name] = f"not yet named by {folder / STATE_FILE}"
            elif fp is None or self._stable[ref.name] < 1:
                waiting[ref.name] = ("files not yet seen unchanged on two looks" if fp is not None
                                      and previous is None else "files still changing")
            else:
                try:
                    self.read(ref.prefix)
                except Exception as exc:  # any reader error: maybe still being written
                    reason = f"not readable yet ({type(exc).__name__})"
                    if names is None or self._stable[ref.name] < self.give_up:
                        waiting[ref.name] = reason
                        continue
                ready.append(ref)
        gone = set(self._seen) - {r.name for r in refs}
        for name in gone:
            changed = True
            for d in (self._seen, self._stable, self._done):
                d.pop(name, None)
        return ready, waiting, changed

    def handed_over(self, ref: CheckpointRef) -> None:
        """Record that ``ref`` (as it is on disk now) was given to the engine."""
        fp = self._seen.get(ref.name)
        if fp is not None:
            self._done[ref.name] = fp


def poll_until(poll: Callable[[], bool], interval: float, until_idle: float | None,
               sleep: Callable[[float], None] = time.sleep,
               clock: Callable[[], float] = time.monotonic) -> str:
    """Call ``poll()`` every ``interval`` seconds until nothing happened (``poll()`` returned
    False) for ``until_idle`` seconds (None or 0: never) or the user presses Ctrl-C.
    Returns ``"idle"`` or ``"interrupted"``."""
    last = clock()
    try:
        while True:
            if poll():
                last = clock()
            elif until_idle and clock() - last >= until_idle:
                return "idle"
            sleep(interval)
    except KeyboardInterrupt:
        return "interrupted"
    except SystemExit as exc:  # a SIGINT handler that exits 130 means Ctrl-C here too
        if exc.code == 130:
            return "interrupted"
        raise


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
