"""The model-source seam: which kinds of checkpoint evalkit evaluates, and how.

Everything after loading (serving contract, caching by content hash, metrics, store,
report, select, gate) is the same for every kind. A kind gives

* ``discover(run_dir, exclude) -> [CheckpointRef]`` (``ref.kind`` set),
* ``prepare(ref, pool, options, contract) -> PreparedSource``: a one-line description
  (stored as the checkpoint's architecture) and a runner opened on first use, whose
  ``run(served inputs) -> raw outputs (N, S, S, 3) in [-1, 1]``.

========================  ====================================  ================
kind                      files                                 default contract
========================  ====================================  ================
``tf-checkpoint``         ``ckpt-N.index`` + ``.data-*`` (seed)  ``seed``
``torch-pix2pix``         ``<epoch>_net_G.pth``, ``latest_...``  ``pix2pix-torch``
``keras``                 ``*.keras``, ``*.h5`` whole models     ``seed``
``savedmodel``            a folder with ``saved_model.pb``      ``seed``
``onnx``                  ``*.onnx`` (onnxruntime)              NCHW: ``pix2pix-torch``, NHWC: ``seed``
========================  ====================================  ================

A ``--contract`` other than the kind's default is recorded in the checkpoint's content
hash (``ref.settings``), so outputs cached under one contract are never reused under
another; so is ``--trust-model-code`` for Keras, SavedModel and ONNX files
(``trust-model-code=yes``), so values computed from a model loaded without the safety
checks of :mod:`evalkit.inputs.sources.safety` never mix with checked ones. ``select --export`` copies the chosen checkpoint (:mod:`evalkit.present.deploy`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.inputs.checkpoints.discover import CheckpointRef
from evalkit.inputs.checkpoints.load import CheckpointError
from evalkit.inputs.sources import exported, tf_seed, torch_pix2pix
from evalkit.inputs.sources.base import PreparedSource, SourceOptions
from evalkit.inputs.sources.contracts import (
    CONTRACTS,
    SEED,
    ContractError,
    InputContract,
    get_contract,
)

__all__ = ["CONTRACTS", "KINDS", "ContractError", "PreparedSource", "SourceOptions",
           "discover", "prepare"]


@dataclass(frozen=True)
class Kind:
    """One registered model-source kind."""

    name: str
    discover: Callable[[Path, list], list[CheckpointRef]]
    prepare: Callable[..., PreparedSource]
    #: its contract when none is asked for; None: decided from the model when opened
    default_contract: str | None


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind(tf_seed.KIND, tf_seed.discover, tf_seed.prepare, tf_seed.DEFAULT_CONTRACT),
    Kind(torch_pix2pix.KIND, torch_pix2pix.discover, torch_pix2pix.prepare,
         torch_pix2pix.DEFAULT_CONTRACT),
    Kind(exported.KERAS, exported.discover_keras, exported.prepare, SEED.name),
    Kind(exported.SAVED_MODEL, exported.discover_saved_models, exported.prepare, SEED.name),
    Kind(exported.ONNX, exported.discover_onnx, exported.prepare, None),
)}


#: kinds whose loading ``--trust-model-code`` changes (the others never run model code)
TRUST_KINDS = (exported.KERAS, exported.SAVED_MODEL, exported.ONNX)
TRUSTED = {"trust-model-code": "yes"}


def _settings(kind: Kind, contract: str | None, trust: bool = False) -> dict[str, str]:
    settings = {}
    if contract is not None and contract != kind.default_contract:
        settings["contract"] = contract
    if trust and kind.name in TRUST_KINDS:
        settings.update(TRUSTED)
    return settings


def discover(run_dir: str | Path, exclude: list[str | Path] | None = None,
             options: Any = None) -> list[CheckpointRef]:
    """Every checkpoint of every kind under ``run_dir`` (hidden folders and ``exclude``
    skipped), ordered by step, then ``latest`` after the others of its step, then name.

    Raises ContractError for an unknown ``options.contract``.
    """
    opts = SourceOptions.of(options)
    if opts.contract is not None:
        get_contract(opts.contract)
    run_dir = Path(run_dir)
    refs: list[CheckpointRef] = []
    for kind in KINDS.values():
        for ref in kind.discover(run_dir, list(exclude or [])):
            ref.settings = _settings(kind, opts.contract, opts.trust_model_code)
            refs.append(ref)
    refs.sort(key=lambda r: (r.step, r.latest, r.name))
    return refs


def prepare(ref: CheckpointRef, pool, options: Any = None) -> PreparedSource:
    """Read what is needed to describe ``ref`` (CheckpointError, one line, if it cannot be
    used); the runner is built and loaded by ``.runner()`` (see PreparedSource)."""
    opts = SourceOptions.of(options)
    kind = KINDS[ref.kind]
    if opts.precision != "fp32" and ref.kind != "tf-checkpoint":
        raise CheckpointError(f"--precision {opts.precision} is implemented for the seed's "
                              f"TF checkpoints only, not {ref.kind}: evaluate it in fp32")
    name = opts.contract or kind.default_contract
    contract: InputContract | None = get_contract(name) if name else None
    return kind.prepare(ref, pool, opts, contract)
