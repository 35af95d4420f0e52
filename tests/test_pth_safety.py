"""A .pth whose pickle carries code is refused, and the code never runs."""

from __future__ import annotations

import builtins
import pickle

import pytest
import torch

import evalkit  # noqa: F401
from evalkit.execute.engine import RunOptions, evaluate_run
from evalkit.inputs.checkpoints.load import CheckpointError
from evalkit.inputs.checkpoints.torch_state import load_state_dict
from evalkit.measure.paired import PairedMetrics
from tests.conftest import make_ab_folder


class _Payload:
    """Unpickling this calls exec(), which writes the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.exec, (f"open({self.marker!r}, 'w').write('payload ran')",))


def _write_payload(path, marker):
    torch.save({"model.1.weight": torch.zeros(1), "evil": _Payload(marker)}, path)


def test_payload_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "marker.txt"
    pth = tmp_path / "latest_net_G.pth"
    _write_payload(pth, marker)
    with pytest.raises(CheckpointError,
                       match=r"refused latest_net_G\.pth.*calls exec.*weights_only=True"):
        load_state_dict(pth)
    assert not marker.exists()
    # control: the payload is real -- an unsafe load runs it
    torch.load(pth, weights_only=False)
    assert marker.read_text() == "payload ran"


def test_payload_checkpoint_fails_alone_in_a_run(tmp_path):
    from tests import pix2pix_reference as ref

    marker = tmp_path / "marker.txt"
    run = tmp_path / "run"
    ref.save_run(run, {"1_net_G.pth": ref.resnet_state(ngf=2, n_blocks=6)})
    _write_payload(run / "2_net_G.pth", marker)
    from evalkit.inputs.data.pairs import load_pairs

    ds = [load_pairs(make_ab_folder(tmp_path / "heldout", n=2), size=32)]
    summary = evaluate_run(run, tmp_path / "out", ds, RunOptions(image_size=32, progress=False),
                           families=[PairedMetrics()])
    status = {c.name: (c.status, c.error) for c in summary.checkpoints}
    assert status["1_net_G.pth"][0] == "evaluated"
    assert status["2_net_G.pth"][0] == "failed"
    assert "refused" in status["2_net_G.pth"][1]
    assert not marker.exists()
    assert summary.exit_code == 1


def test_plain_pickle_protocol_is_refused_too(tmp_path):
    marker = tmp_path / "m.txt"
    path = tmp_path / "3_net_G.pth"
    path.write_bytes(pickle.dumps(_Payload(marker)))  # a legacy (non-zip) pickle file
    # torch 2.14 stops at protocol 4's FRAME opcode and names no global; evalkit finds it
    # by disassembling the pickle (issue 26 item 6: was "could not parse it")
    with pytest.raises(CheckpointError, match=r"refused 3_net_G\.pth.*calls builtins\.exec"):
        load_state_dict(path)
    assert not marker.exists()


def test_garbage_is_unreadable_not_refused(tmp_path):
    path = tmp_path / "4_net_G.pth"
    path.write_bytes(b"\x00not a pickle at all" * 10)
    with pytest.raises(CheckpointError, match="cannot read 4_net_G.pth.*could not parse it"):
        load_state_dict(path)


def test_pickle_globals_reads_memoized_stack_globals():
    from evalkit.inputs.checkpoints.torch_state import pickle_globals

    class Eval:
        def __reduce__(self):
            return (builtins.eval, ("1",))

    # the second STACK_GLOBAL takes its module string 'builtins' from the memo (BINGET)
    data = pickle.dumps([_Payload("m"), Eval()], protocol=4)
    assert b"h\x01" in data or b"j\x01" in data  # BINGET 1 really is in the pickle
    assert pickle_globals(data) == ["builtins.exec", "builtins.eval"]
    assert pickle_globals(pickle.dumps(_Payload("m"), protocol=0)) == ["__builtin__.exec"]
