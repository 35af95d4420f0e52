"""Generators exported for serving: Keras files, SavedModel folders, ONNX files.

Each file (or folder) is one checkpoint; ``<name>-<step>.<ext>`` (``gen-12.keras``,
``export-3/``) gives a series ordered by step, anything else has step 0.

* Keras: ``*.keras`` and ``*.h5`` whole models (``*.weights.h5`` holds weights only and is
  reported as unusable). The container is told by the file's bytes (zip or HDF5), not its
  name; its model config is checked first (:func:`safety.check_keras_file`: no Lambda, no
  custom layer). Loaded with tf-keras (the seed's Keras 2, which also maps the seed's
  ``InstanceNormalization``) first for HDF5, Keras 3 first for zip, both with
  ``safe_mode=True`` and ``compile=False``.
* SavedModel: a folder with ``saved_model.pb``; its graph and functions are checked first
  (:func:`safety.check_saved_model`: no file, process or network ops outside its own
  variable saver); its ``serving_default`` signature is called.
* ONNX: ``*.onnx`` through onnxruntime's CPU provider (optional extra:
  ``pip install 'evalkit[onnx]'``), after :func:`safety.check_onnx` (standard domains only).

``--trust-model-code`` (``SourceOptions.trust_model_code``) skips those checks and loads
Keras files with ``safe_mode=False``; the description says so and the content hash
records it (:mod:`evalkit.inputs.sources`).

The input layout (NHWC or NCHW) and channels are read from the model's input shape.
Default input contract: ``seed`` for Keras and SavedModel (exports of the seed's
generator), and for ONNX ``pix2pix-torch`` when the input is NCHW (a PyTorch export),
``seed`` when NHWC; ``--contract`` overrides it, and the description says which was used.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from evalkit.inputs.checkpoints.discover import CheckpointRef, walk_files
from evalkit.inputs.checkpoints.load import CheckpointError, _one_line
from evalkit.inputs.sources import safety
from evalkit.inputs.sources.base import (
    ModelRunner,
    PreparedSource,
    SourceOptions,
    check_spatial,
    image_layout,
)
from evalkit.inputs.sources.contracts import PIX2PIX_TORCH, SEED, InputContract

KERAS, SAVED_MODEL, ONNX = "keras", "savedmodel", "onnx"
_STEP_RE = re.compile(r"^(?P<base>.+)-(?P<step>\d+)$")


def _step(stem: str) -> int:
    m = _STEP_RE.match(stem)
    return int(m.group("step")) if m else 0


def _ref(run_dir: Path, path: Path, kind: str, stem: str, files: list[Path],
         problem: str | None = None) -> CheckpointRef:
    return CheckpointRef(name=path.relative_to(run_dir).as_posix(), step=_step(stem),
                         prefix=path, files=files, kind=kind, problem=problem)


def saved_model_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def discover_saved_models(run_dir: Path, exclude) -> list[CheckpointRef]:
    return [_ref(run_dir, pb.parent, SAVED_MODEL, pb.parent.name,
                 saved_model_files(pb.parent))
            for pb in walk_files(run_dir, exclude, "saved_model.pb")]


def _inside(path: Path, folders: list[Path]) -> bool:
    return any(path.is_relative_to(f) for f in folders)


def discover_keras(run_dir: Path, exclude) -> list[CheckpointRef]:
    folders = [r.prefix for r in discover_saved_models(run_dir, exclude)]
    refs = []
    for path in walk_files(run_dir, exclude, "*"):
        if path.suffix not in (".keras", ".h5") or not path.is_file() or _inside(path, folders):
            continue
        problem = None
        stem = path.stem
        if path.name.endswith(".weights.h5"):
            stem = path.name[: -len(".weights.h5")]
            problem = (f"{path.name} holds weights only; evalkit evaluates whole models: "
                       "save with model.save('NAME.keras') (or .h5)")
        refs.append(_ref(run_dir, path, KERAS, stem, [path], problem))
    return refs


def discover_onnx(run_dir: Path, exclude) -> list[CheckpointRef]:
    folders = [r.prefix for r in discover_saved_models(run_dir, exclude)]
    return [_ref(run_dir, p, ONNX, p.stem, [p]) for p in walk_files(run_dir, exclude, "*.onnx")
            if p.is_file() and not _inside(p, folders)]


def _static(dims) -> list:
    return [d if isinstance(d, int) and d > 0 else None for d in dims]


class _TFRunner(ModelRunner):
    """A Keras model or SavedModel signature called on NHWC (or NCHW) batches."""

    def __init__(self, fn, layout: str, channels: int, size: int, contract: InputContract):
        super().__init__(contract, channels, size)
        self.fn, self.layout = fn, layout

    def forward(self, x: np.ndarray) -> np.ndarray:
        if self.layout == "NCHW":
            return np.transpose(self.fn(np.transpose(x, (0, 3, 1, 2))), (0, 2, 3, 1))
        return self.fn(x)


def _load_keras(path: Path, trust: bool = False):
    """A whole Keras model: tf-keras first for HDF5 (Keras 2's own format), Keras 3 first
    for zip, told by the bytes; ``safe_mode`` unless ``trust`` (the caller has checked the
    config with :func:`safety.check_keras_file` unless ``trust``)."""
    from evalkit.core.tf import tf_keras
    from evalkit.inputs.models.resnet import InstanceNormalization

    def legacy():
        return tf_keras.models.load_model(
            path, compile=False, safe_mode=not trust,
            custom_objects={"InstanceNormalization": InstanceNormalization})

    def keras3():
        import keras

        return keras.saving.load_model(path, compile=False, safe_mode=not trust)

    errors = []
    hdf5 = safety.keras_container(path) == ["hdf5"]
    for load in ((legacy, keras3) if hdf5 else (keras3, legacy)):
        try:
            return load()
        except Exception as exc:
            errors.append(_one_line(exc))
    raise CheckpointError(f"cannot load Keras model {path.name}: {errors[0]}")


def _prepare_keras(ref: CheckpointRef, options: SourceOptions,
                   contract: InputContract | None) -> PreparedSource:
    contract = contract or SEED
    suffix = ref.prefix.suffix
    trust = options.trust_model_code
    if not trust:
        safety.check_keras_file(ref.prefix)

    def open_runner():
        model = _load_keras(ref.prefix, trust)
        shape = _static(model.inputs[0].shape) if getattr(model, "inputs", None) else None
        if shape is None:
            raise CheckpointError(f"Keras model {ref.prefix.name} has no input shape; save "
                                  "a functional model or one built on an input shape")
        layout, channels = image_layout(shape, ref.prefix.name)
        check_spatial(shape, layout, options.image_size, ref.prefix.name)

        def fn(x):
            return np.asarray(model(x, training=False))

        return _TFRunner(fn, layout, channels, options.image_size, contract)

    return PreparedSource(f"Keras model ({suffix}); contract {contract.name}{_trusted(trust)}",
                          open_runner)


def _trusted(trust: bool) -> str:
    return "; trusted model code (--trust-model-code, not checked)" if trust else ""


def _prepare_saved_model(ref: CheckpointRef, options: SourceOptions,
                         contract: InputContract | None) -> PreparedSource:
    contract = contract or SEED
    if not options.trust_model_code:
        safety.check_saved_model(ref.prefix)

    def open_runner():
        from evalkit.core.tf import tf

        try:
            obj = tf.saved_model.load(str(ref.prefix))
        except Exception as exc:
            raise CheckpointError(f"cannot load SavedModel {ref.prefix.name}: "
                                  f"{_one_line(exc)}") from exc
        sig = getattr(obj, "signatures", {}).get("serving_default")
        if sig is None:
            raise CheckpointError(f"SavedModel {ref.prefix.name} has no serving_default "
                                  "signature; export it with signatures={'serving_default': "
                                  "fn.get_concrete_function(spec)}")
        specs = sig.structured_input_signature[1]
        if len(specs) != 1:
            raise CheckpointError(f"SavedModel {ref.prefix.name} takes {len(specs)} inputs "
                                  f"({', '.join(specs)}); evalkit feeds one image batch")
        (name, spec), = specs.items()
        shape = _static(spec.shape.as_list())
        layout, channels = image_layout(shape, ref.prefix.name)
        check_spatial(shape, layout, options.image_size, ref.prefix.name)

        def fn(x):
            out = sig(**{name: tf.constant(x)})
            return next(iter(out.values())).numpy() if isinstance(out, dict) else out.numpy()

        return _TFRunner(fn, layout, channels, options.image_size, contract)

    return PreparedSource(f"SavedModel (serving_default); contract {contract.name}"
                          f"{_trusted(options.trust_model_code)}", open_runner)


class OnnxRunner(ModelRunner):
    """An onnxruntime CPU session."""

    def __init__(self, session, layout: str, channels: int, size: int,
                 contract: InputContract):
        super().__init__(contract, channels, size)
        self.session, self.layout = session, layout
        self.input_name = session.get_inputs()[0].name

    def forward(self, x: np.ndarray) -> np.ndarray:
        if self.layout == "NCHW":
            x = np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))
        y = self.session.run(None, {self.input_name: x})[0]
        return np.transpose(y, (0, 2, 3, 1)) if self.layout == "NCHW" else y


def _onnx_session(path: Path, trust: bool = False):
    """An onnxruntime CPU session, after :func:`safety.check_onnx` unless ``trust``."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise CheckpointError("ONNX models need onnxruntime: pip install 'evalkit[onnx]'"
                              ) from exc
    if not trust:
        safety.check_onnx(path)
    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise CheckpointError(f"cannot load ONNX model {path.name}: {_one_line(exc)}") from exc


def _prepare_onnx(ref: CheckpointRef, options: SourceOptions,
                  contract: InputContract | None) -> PreparedSource:
    session = _onnx_session(ref.prefix, options.trust_model_code)
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise CheckpointError(f"ONNX model {ref.prefix.name} takes {len(inputs)} inputs; "
                              "evalkit feeds one image batch")
    if inputs[0].type != "tensor(float)":
        raise CheckpointError(f"ONNX model {ref.prefix.name} takes {inputs[0].type}; evalkit "
                              "feeds tensor(float)")
    shape = _static(inputs[0].shape)
    layout, channels = image_layout(shape, ref.prefix.name)
    check_spatial(shape, layout, options.image_size, ref.prefix.name)
    how = ""
    if contract is None:
        contract = PIX2PIX_TORCH if layout == "NCHW" else SEED
        how = f" (from the {layout} input)"
    desc = (f"ONNX model {layout} in={channels}; contract {contract.name}{how}"
            f"{_trusted(options.trust_model_code)}")
    return PreparedSource(desc, lambda: OnnxRunner(session, layout, channels,
                                                   options.image_size, contract))


def prepare(ref: CheckpointRef, pool, options: SourceOptions,
            contract: InputContract | None) -> PreparedSource:
    """``contract`` None: the kind's default (see the module docstring)."""
    if ref.kind == KERAS:
        return _prepare_keras(ref, options, contract)
    if ref.kind == SAVED_MODEL:
        return _prepare_saved_model(ref, options, contract)
    return _prepare_onnx(ref, options, contract)
