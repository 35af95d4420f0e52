"""Refuse model files that could run code or touch files before anything in them runs.

Checked statically (nothing is deserialized or executed), unless ``--trust-model-code``:

* **Keras** (``.keras``, ``.h5``): the container is told by its bytes, never its name (a zip
  starting ``PK\\x03\\x04``, an HDF5 file found by ``h5py.is_hdf5``; a file that is both is
  checked both ways; neither is refused). The model config JSON (``config.json`` in a zip,
  the ``model_config`` attribute of an HDF5 file, read with h5py) is walked and refused
  when it holds a ``Lambda`` layer (tf-keras unpacks its Python bytecode from HDF5 files
  whatever ``safe_mode`` says), a layer class that is not a built-in Keras layer (nor
  evalkit's own ``InstanceNormalization``), an object from a module outside Keras, or a
  ``TFOpLambda`` calling a TensorFlow function outside :data:`SAFE_TF_FUNCTIONS`, a
  built-in layer that runs code or loads another model (:data:`CODE_LAYERS`: ``TFSMLayer``,
  ``TorchModuleWrapper``, ``JaxLayer``, ``FlaxLayer``), or a layer that names a file to
  read (a vocabulary path, :data:`FILE_KEYS`).
* **SavedModel**: every node of ``saved_model.pb``'s graphs and every function of their
  function libraries is read (protobuf, no TensorFlow runtime); ops in :data:`FILE_OPS`,
  or matching :data:`FILE_OP_PREFIXES` (files, processes, Python, network) are refused. The
  one exception is the checkpoint ops of :data:`SAVER_OPS` in the graph nodes and functions
  that only the graph's own saver (``saver_def``) reaches: save ops only in its save part,
  restore ops only in its restore part (TF2 puts them in ``__inference__traced_save_*`` /
  ``_restore_*`` functions, TF1 in ``save/*`` graph nodes). The same ops anywhere else
  (e.g. in the serving function, or reached from a signature) are refused.
* **ONNX**: every node (subgraphs and model-local functions included) must be in the
  standard domains (``''``, ``ai.onnx``, ``ai.onnx.ml``); custom-domain ops are refused.

Each refusal is a :class:`CheckpointError` naming the file, the layer/op/function, and
the fixes.
"""

from __future__ import annotations

import functools
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

from evalkit.inputs.checkpoints.load import CheckpointError

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

#: what every refusal ends with
TRUST_FIX = "or, only if you trust its author, pass --trust-model-code"

#: evalkit's own layer (evalkit.inputs.models.resnet), passed to the loader by name
_OWN_LAYERS = {"InstanceNormalization": "evalkit.inputs.models.resnet"}
_MODEL_CLASSES = {"Functional", "Sequential", "Model"}
_OP_LAMBDAS = {"TFOpLambda", "SlicingOpLambda"}
_KERAS_MODULES = ("keras", "tf_keras")
#: built-in layers that run code or load other files: a Python lambda, a SavedModel
#: (``TFSMLayer``), a pickled torch module, JAX/Flax functions
CODE_LAYERS = frozenset({"Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer",
                         "FlaxLayer"})
#: layer config keys whose string value is a path the layer reads (a vocabulary file...)
FILE_KEYS = ("vocabulary", "filepath", "file_path", "idf_weights")

#: TensorFlow functions a ``TFOpLambda`` (what ``x * 2`` or ``tf.nn.relu(x)`` in a
#: functional tf-keras model becomes) may call: pure tensor maths; anything else refused
SAFE_TF_NAMESPACES = ("math.", "nn.", "__operators__.", "linalg.", "signal.", "image.",
                      "compat.v1.nn.", "compat.v1.math.")
SAFE_TF_FUNCTIONS = frozenset({
    "abs", "add", "cast", "clip_by_value", "concat", "divide", "exp", "expand_dims",
    "identity", "maximum", "minimum", "multiply", "ones_like", "pad", "pow", "reduce_max",
    "reduce_mean", "reduce_min", "reduce_sum", "reshape", "shape", "sigmoid", "split",
    "sqrt", "square", "squeeze", "stack", "subtract", "tanh", "tile", "transpose",
    "unstack", "where", "zeros_like", "compat.v1.transpose", "compat.v1.squeeze",
    "__operators__.getitem", "broadcast_to", "gather", "slice", "strided_slice",
})

#: TensorFlow ops that read or write files, run Python or processes, or reach the network
FILE_OPS = frozenset({
    "WriteFile", "ReadFile", "MatchingFiles", "PyFunc", "PyFuncStateless", "EagerPyFunc",
    "Save", "SaveSlices", "SaveV2", "Restore", "RestoreSlice", "RestoreV2",
    "MergeV2Checkpoints", "ShardedFilename", "ShardedFilespec", "ImmutableConst",
    "Print", "PrintV2", "DebugIdentity", "DebugIdentityV2", "DebugIdentityV3",
    "DebugNanCount", "DebugNumericSummary", "DebugNumericSummaryV2",
    "InitializeTableFromTextFile", "InitializeTableFromTextFileV2", "LoadAndRemapMatrix",
    "GenerateVocabRemapping", "DecodeProtoV2", "EncodeProto",
    "TFRecordDataset", "TFRecordDatasetV2", "TextLineDataset", "FixedLengthRecordDataset",
    "FixedLengthRecordDatasetV2", "SqlDataset", "CSVDataset", "CSVDatasetV2", "LMDBDataset",
    "DatasetToTFRecord", "SnapshotDataset", "SnapshotDatasetV2", "SaveDataset",
    "SaveDatasetV2", "LoadDataset", "MatchingFilesDataset", "ExperimentalSqlDataset",
    "ExperimentalLMDBDataset", "ExperimentalCSVDataset", "ExperimentalMatchingFilesDataset",
    "ExperimentalDatasetToTFRecord", "CreateSummaryFileWriter", "CreateSummaryDbWriter",
    "ImportEvent", "FlushSummaryWriter", "CloseSummaryWriter", "SummaryWriter",
    "BoostedTreesCreateQuantileStreamResource", "CheckpointSaverIterator",
})
#: op-name prefixes refused too: file readers, summary writers, RPC, tf.data service,
#: collectives (other processes/machines)
FILE_OP_PREFIXES = ("Write", "Reader", "WholeFileReader", "TextLineReader", "TFRecordReader",
                    "FixedLengthRecordReader", "IdentityReader", "LMDBReader", "Rpc",
                    "TryRpc", "DataService", "RegisterDataset", "Collective", "Send", "Recv",
                    "_Send", "_Recv", "_HostSend", "_HostRecv")
#: what SavedModel's own saver (only) may use, by part: the save part writes its variables
#: (never run when evaluating), the restore part reads them
SAVER_OPS: dict[str, frozenset[str]] = {
    "save": frozenset({"SaveV2", "Save", "SaveSlices", "MergeV2Checkpoints", "ShardedFilename",
                       "ShardedFilespec"}),
    "restore": frozenset({"RestoreV2", "Restore", "RestoreSlice"}),
}

ONNX_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})
#: a Keras model config larger than this (bytes, uncompressed) is refused unread
MAX_CONFIG_BYTES = 64 * 2**20


def is_file_op(op: str) -> bool:
    """Does TensorFlow op type ``op`` touch files, processes, Python or the network?"""
    return op in FILE_OPS or op.startswith(FILE_OP_PREFIXES)


def _refuse(name: str, what: str, fix: str) -> CheckpointError:
    return CheckpointError(f"refused {name}: {what}; evalkit does not run code from model "
                           f"files. {fix}, {TRUST_FIX}")


# --- Keras ------------------------------------------------------------------------------

def keras_container(path: Path) -> list[str]:
    """``["zip"]``, ``["hdf5"]`` (or both, for a file that is both) from the bytes of
    ``path``; CheckpointError when it is neither."""
    import h5py

    with open(path, "rb") as f:
        head = f.read(8)
    kinds = []
    if head.startswith(ZIP_MAGIC) or zipfile.is_zipfile(path):
        kinds.append("zip")
    if head == HDF5_MAGIC or h5py.is_hdf5(path):
        kinds.append("hdf5")
    if not kinds:
        raise CheckpointError(f"cannot read {path.name}: it is neither a zip (.keras) nor an "
                              "HDF5 (.h5) Keras file; save it with model.save('NAME.keras')")
    return kinds


def keras_configs(path: Path) -> Iterator[tuple[str, dict]]:
    """``(where, model config)`` for each container view of a Keras file, read as JSON
    (nothing deserialized)."""
    for kind in keras_container(path):
        try:
            if kind == "zip":
                with zipfile.ZipFile(path) as z:
                    if z.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
                        raise CheckpointError(f"refused {path.name}: its config.json is over "
                                              f"{MAX_CONFIG_BYTES >> 20} MiB")
                    raw = z.read("config.json")
                yield "config.json", json.loads(raw)
            else:
                import h5py

                with h5py.File(path, "r") as f:
                    raw = f.attrs.get("model_config")
                if raw is not None and len(raw) > MAX_CONFIG_BYTES:
                    raise CheckpointError(f"refused {path.name}: its model_config is over "
                                          f"{MAX_CONFIG_BYTES >> 20} MiB")
                if raw is None:
                    raise CheckpointError(
                        f"{path.name} is an HDF5 file without a model config (weights only?); "
                        "evalkit evaluates whole models: save with model.save('NAME.keras')")
                yield "model_config", json.loads(raw)
        except CheckpointError:
            raise
        except RecursionError as exc:
            raise CheckpointError(f"refused {path.name}: its model config is nested too "
                                  "deeply to check") from exc
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise CheckpointError(f"cannot read the model config of {path.name} ({kind}): "
                                  f"{exc}") from exc


@functools.cache
def _builtin_layers() -> frozenset[str]:
    from evalkit.core.tf import tf_keras

    names = {n for n in dir(tf_keras.layers) if n[:1].isupper()}
    try:
        import keras

        names |= {n for n in dir(keras.layers) if n[:1].isupper()}
    except ImportError:  # pragma: no cover - Keras 3 is optional
        pass
    return frozenset(names - CODE_LAYERS)


def _walk(obj, parent_key: str = "") -> Iterator[tuple[str, dict]]:
    """Every dict in a JSON tree, with the key it sits under (``layers`` for layers)."""
    if isinstance(obj, dict):
        yield parent_key, obj
        for k, v in obj.items():
            yield from _walk(v, k)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v, parent_key)


def _tf_function_ok(fn) -> bool:
    return isinstance(fn, str) and (fn in SAFE_TF_FUNCTIONS or fn.startswith(SAFE_TF_NAMESPACES))


def check_keras_config(config: dict, name: str) -> None:
    """Refuse (CheckpointError) a Keras model config that could run code (module doc)."""
    builtin = _builtin_layers()
    fix = f"Re-save {name} as .keras from Keras built-in layers without Lambda"
    for key, d in _walk(config):
        cls = d.get("class_name")
        if not isinstance(cls, str):
            continue
        label = (d.get("config") or {}).get("name") if isinstance(d.get("config"), dict) \
            else None
        label = f"layer {label!r} " if label else ""
        if cls in ("Lambda", "__lambda__"):
            raise _refuse(name, f"{label}is a Lambda layer (Python code)", fix)
        if cls in CODE_LAYERS:
            raise _refuse(name, f"{label}is a {cls} layer (it runs code or loads another "
                          "model)", fix)
        module = d.get("module")
        if isinstance(module, str) and not module.startswith(_KERAS_MODULES) \
                and _OWN_LAYERS.get(cls) != module:
            raise _refuse(name, f"{label}({cls}) comes from module {module!r}, not Keras", fix)
        if key != "layers":
            continue
        config = d.get("config") if isinstance(d.get("config"), dict) else {}
        paths = [k for k in FILE_KEYS if isinstance(config.get(k), str)]
        if paths:
            raise _refuse(name, f"{label}({cls}) reads the file {config[paths[0]]!r} "
                          f"({paths[0]})", fix)
        if cls in _OP_LAMBDAS:
            fn = (d.get("config") or {}).get("function")
            if not _tf_function_ok(fn):
                raise _refuse(name, f"{label}({cls}) calls tf.{fn}, which evalkit does not "
                              "allow in a model", fix)
        elif cls not in builtin and cls not in _MODEL_CLASSES and cls not in _OWN_LAYERS:
            raise _refuse(name, f"{label}is a custom layer class {cls!r} (its Python code "
                          "would be needed to load it)", fix)


def check_keras_file(path: Path) -> None:
    """Refuse a Keras file whose config (in any container view) could run code."""
    for _where, config in keras_configs(path):
        try:
            check_keras_config(config, path.name)
        except RecursionError as exc:
            raise CheckpointError(f"refused {path.name}: its model config is nested too "
                                  "deeply to check") from exc


# --- SavedModel -------------------------------------------------------------------------

def _func_refs(node_or_attrs) -> Iterator[str]:
    """Names of the functions a NodeDef calls (``func`` / ``list(func)`` attributes)."""
    for value in node_or_attrs.attr.values():
        if value.HasField("func"):
            yield value.func.name
        if value.HasField("list"):
            for f in value.list.func:
                yield f.name


def _closure(roots: set[str], calls: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        fn = todo.pop()
        if fn in seen:
            continue
        seen.add(fn)
        todo.extend(calls.get(fn, ()))
    return seen


def _tensor_node(name: str) -> str:
    """``"^a"``, ``"a:0"`` -> ``"a"``."""
    return name.lstrip("^").split(":")[0]


def _graph_back(roots: set[str], inputs: dict[str, list[str]]) -> set[str]:
    """Graph nodes ``roots`` depend on (data and control inputs), roots included."""
    seen: set[str] = set()
    todo = [r for r in roots if r]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        todo.extend(_tensor_node(i) for i in inputs.get(n, ()))
    return seen


def _meta_graph_roles(mg) -> Iterator[tuple[str, str, str]]:
    """``(op, where, role)`` for one MetaGraphDef; role ``save`` / ``restore``: only the
    saver's save (or restore) part reaches it; ``""``: anything else."""
    inputs = {n.name: list(n.input) for n in mg.graph_def.node}
    save = _graph_back({_tensor_node(mg.saver_def.save_tensor_name)}, inputs)
    restore = _graph_back({_tensor_node(mg.saver_def.restore_op_name)}, inputs)
    signature = _graph_back({_tensor_node(t.name) for sig in mg.signature_def.values()
                             for t in (*sig.inputs.values(), *sig.outputs.values())}, inputs)
    node_role = {}
    for n in mg.graph_def.node:
        if n.name in save and n.name not in restore and n.name not in signature:
            node_role[n.name] = "save"
        elif n.name in restore and n.name not in save and n.name not in signature:
            node_role[n.name] = "restore"
        else:
            node_role[n.name] = ""
    library = {f.signature.name: f for f in mg.graph_def.library.function}
    calls = {name: {ref for n in f.node_def for ref in _func_refs(n)}
             for name, f in library.items()}
    roots: dict[str, set[str]] = {"save": set(), "restore": set(), "": set()}
    for n in mg.graph_def.node:
        roots[node_role[n.name]].update(_func_refs(n))
    reach = {role: _closure(r, calls) for role, r in roots.items()}
    # a function neither part reaches is a root of "anything else" (object graph, signatures)
    reach[""] = _closure(roots[""] | (set(library) - reach["save"] - reach["restore"]), calls)
    fn_role = {}
    for name in library:
        hits = [role for role in ("save", "restore", "") if name in reach[role]]
        fn_role[name] = hits[0] if len(hits) == 1 else ""
    for n in mg.graph_def.node:
        yield n.op, f"graph node {n.name}", node_role[n.name]
    for name, f in library.items():
        for n in f.node_def:
            yield n.op, f"function {name}", fn_role[name]


def saved_model_ops(folder: Path) -> list[tuple[str, str, str]]:
    """``(op, where, role)`` for every node of every graph and function in
    ``folder/saved_model.pb`` (parsed as a protobuf; nothing runs). ``role`` is ``save`` or
    ``restore`` for nodes and functions that only the graph's saver (``saver_def``: its
    save tensor, its restore op) reaches, else ``""``."""
    import importlib

    from evalkit.core.tf import tf  # noqa: F401  (TensorFlow imported the safe way first)

    # the protobuf message only: parsing it runs nothing
    saved_model_pb2 = importlib.import_module("tensorflow.core.protobuf.saved_model_pb2")

    sm = saved_model_pb2.SavedModel()
    try:
        sm.ParseFromString((folder / "saved_model.pb").read_bytes())
    except Exception as exc:
        raise CheckpointError(f"cannot read {folder.name}/saved_model.pb: {exc}") from exc
    return [found for mg in sm.meta_graphs for found in _meta_graph_roles(mg)]


def check_saved_model(folder: Path) -> None:
    """Refuse a SavedModel whose graph or functions use a file/process/network op (module
    doc)."""
    for op, where, role in saved_model_ops(folder):
        if is_file_op(op) and op not in SAVER_OPS.get(role, ()):
            raise _refuse(folder.name, f"its {where} uses the op {op}, which reads or writes "
                          "files, runs Python or reaches other processes",
                          "Export the generator alone (tf.saved_model.save of a tf.function "
                          "doing only tensor maths)")


# --- ONNX -------------------------------------------------------------------------------

def _onnx_nodes(graph) -> Iterator:
    """Every node of a GraphProto (or FunctionProto), and of the subgraphs in its nodes'
    attributes (``If`` branches, ``Loop``/``Scan`` bodies)."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from _onnx_nodes(attr.g)
            for g in attr.graphs:
                yield from _onnx_nodes(g)


def check_onnx(path: Path) -> None:
    """Refuse an ONNX model with a node outside the standard domains (module doc)."""
    try:
        import onnx
    except ImportError as exc:
        raise CheckpointError(f"cannot check {path.name} for custom ops without the onnx "
                              "package: pip install 'evalkit[onnx]' (or pass "
                              "--trust-model-code)") from exc
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise CheckpointError(f"cannot load ONNX model {path.name}: "
                              f"{str(exc).splitlines()[0] if str(exc) else exc}") from exc
    nodes = [*_onnx_nodes(model.graph), *(n for f in model.functions for n in _onnx_nodes(f))]
    for node in nodes:
        if node.domain not in ONNX_DOMAINS:
            raise _refuse(path.name, f"node {node.name or node.op_type!r} is the op "
                          f"{node.op_type} of the custom domain {node.domain!r}",
                          "Export it with standard ONNX ops only")
