"""Read a pix2pix / CycleGAN ``*_net_G.pth`` state dict safely and infer its generator.

Safety: files are read with ``torch.load(weights_only=True)``, whose unpickler only
rebuilds tensors and plain containers; a file whose pickle names any other callable (a
whole pickled model, or a crafted payload) is refused before anything in it runs.

Inference (:func:`infer_architecture`) reads the generator from the key names and shapes
that upstream's ``define_G`` produces (see :mod:`evalkit.inputs.models.pix2pix`):

* ``model.<i>.conv_block.*`` keys -> a ResNet generator; the number of blocks (9 or 6)
  picks ``resnet_9blocks`` / ``resnet_6blocks``, and the index of the block's second conv
  (5, or 6 after a Dropout) says whether it was trained with dropout;
* ``model.model.*`` keys -> a U-Net; its depth (8 or 7 levels) picks ``unet_256`` /
  ``unet_128``;
* norm: batch-norm layers hold ``weight``/``bias``/``running_*``; instance-norm layers hold
  nothing, but then every conv has a bias; with neither, ``none``;
* channels: ``in`` and ``ngf`` from the first conv, ``out`` from the last.

Checkpoints written before PyTorch 0.4 carry ``running_mean``/``running_var`` (and later
``num_batches_tracked``) for instance-norm layers; upstream drops them when loading
(``__patch_instance_norm_state_dict``) and so does :func:`normalize_state`.
"""

from __future__ import annotations

import pickle
import pickletools
import re
import zipfile
from pathlib import Path

from evalkit.inputs.checkpoints.load import CheckpointError, _one_line
from evalkit.inputs.models.pix2pix_arch import NETGS, NORMS, Pix2PixArchitecture

_BLOCK_RE = re.compile(r"^model\.(\d+)\.conv_block\.(\d+)\.weight$")
_RUNNING = ("running_mean", "running_var", "num_batches_tracked")


def load_state_dict(path: str | Path) -> dict:
    """``{key: torch.Tensor}`` from a ``.pth`` file, without executing pickled code.

    Raises CheckpointError naming the file and the fix for a pickle that is not a plain
    state dict, an unreadable file, or content that holds no tensors.
    """
    import torch

    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        blocked = _blocked_global(str(exc), path)
        if blocked is None:  # not a pickle torch can read at all (garbage, exotic protocol)
            raise CheckpointError(f"cannot read {path.name}: not a PyTorch state dict file "
                                  "(torch.load(weights_only=True) could not parse it)") from exc
        raise CheckpointError(
            f"refused {path.name}: it is not a plain state dict, its pickle calls "
            f"{blocked}; evalkit loads .pth files with torch.load(weights_only=True) and "
            "never runs pickled code. Re-save it in a trusted environment with "
            "torch.save(net.state_dict(), PATH)") from exc
    except Exception as exc:
        raise CheckpointError(f"cannot read {path.name}: {_one_line(exc)}") from exc
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise CheckpointError(f"{path.name} holds a {type(obj).__name__}, not a state dict of "
                              "tensors; save the generator with "
                              "torch.save(net.state_dict(), PATH)")
    return dict(obj)


_STRING_OPS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE",
                         "SHORT_BINSTRING", "BINSTRING", "STRING"})
_PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})


def pickle_globals(data: bytes) -> list[str]:
    """``module.name`` of every global a pickle imports, read by disassembling it
    (:mod:`pickletools`; nothing is unpickled). ``STACK_GLOBAL`` takes the last two strings
    pushed (directly or from the memo)."""
    found: list[str] = []
    strings: list[str] = []
    memo: dict[int, object] = {}
    top: object = None  # the value the previous op pushed, for the memo
    try:
        for op, arg, _pos in pickletools.genops(data):
            name = op.name
            if name in ("GLOBAL", "INST"):
                found.append(str(arg).replace(" ", "."))
            elif name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
            if name in _STRING_OPS:
                top = str(arg)
                strings.append(top)
            elif name in _GET_OPS:
                top = memo.get(int(arg))
                if isinstance(top, str):
                    strings.append(top)
            elif name == "MEMOIZE":
                memo[len(memo)] = top
            elif name in _PUT_OPS:
                memo[int(arg)] = top
            else:
                top = None
    except Exception:  # a damaged or exotic pickle: what was read so far
        pass
    return found


def _pickle_bytes(path: Path) -> bytes:
    """The pickle of a ``.pth``: ``*/data.pkl`` in torch's zip format, else the file."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith("data.pkl")]
            return z.read(names[0]) if names else b""
    return path.read_bytes()


def _blocked_global(message: str, path: Path) -> str | None:
    """The global torch's weights-only unpickler refused: from its message when it names
    one (``Unsupported global: GLOBAL x``), else the first global of the pickle outside
    torch's allowlist, found by disassembly (torch 2.14 stops at an unsupported opcode of
    pickle protocol 4 before reaching the global, and its message names none)."""
    m = re.search(r"Unsupported global: GLOBAL (\S+)", message)
    if m:
        return m.group(1)
    try:
        from torch._weights_only_unpickler import _get_allowed_globals

        allowed = set(_get_allowed_globals())
    except Exception:  # a torch without it: every global is suspect
        allowed = set()
    try:
        names = pickle_globals(_pickle_bytes(path))
    except (OSError, zipfile.BadZipFile):
        return None
    return next((g for g in names if g not in allowed
                 and (allowed or not g.startswith("torch."))), None)


def normalize_state(state: dict) -> dict:
    """Strip a DataParallel ``module.`` prefix; drop instance-norm-era running statistics
    of layers that have no affine weight (see the module docstring)."""
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    out = {}
    for key, value in state.items():
        base, _, leaf = key.rpartition(".")
        if leaf in _RUNNING and f"{base}.weight" not in state:
            continue  # an InstanceNorm2d's stale buffers (upstream drops them too)
        out[key] = value
    return out


def _shape(state: dict, key: str) -> list[int]:
    return list(state[key].shape)


def _has_norm_params(state: dict, prefix: str) -> bool:
    return f"{prefix}.running_mean" in state or f"{prefix}.weight" in state


def _infer_resnet(state: dict) -> dict:
    blocks = sorted({int(m.group(1)) for k in state if (m := _BLOCK_RE.match(k))})
    if not blocks or "model.1.weight" not in state:
        raise CheckpointError("not a pix2pix ResNet generator: no model.1.weight")
    convs = {int(m.group(2)) for k in state
             if (m := _BLOCK_RE.match(k)) and state[k].dim() == 4}  # {1, 5} or {1, 6}
    first = _shape(state, "model.1.weight")  # (ngf, in, 7, 7)
    last_conv = max(int(k.split(".")[1]) for k in state
                    if k.startswith("model.") and k.count(".") == 2 and k.endswith(".weight")
                    and len(state[k].shape) == 4)
    out_nc = _shape(state, f"model.{last_conv}.weight")[0]
    norm = _norm_kind(state, "model.1.bias", "model.2")
    netg = {9: "resnet_9blocks", 6: "resnet_6blocks"}.get(len(blocks))
    if netg is None:
        raise CheckpointError(f"a ResNet generator with {len(blocks)} residual blocks: evalkit "
                              "knows resnet_9blocks and resnet_6blocks")
    return {"net_g": netg, "norm": norm, "input_nc": first[1], "ngf": first[0],
            "output_nc": out_nc, "use_dropout": 6 in convs}


def _norm_kind(state: dict, first_bias: str, first_norm: str) -> str:
    """Upstream gives the first conv a bias only with instance norm (``use_bias``), and
    batch norm has affine parameters at the first norm layer."""
    if first_bias in state:
        return "instance"
    if _has_norm_params(state, first_norm):
        return "batch"
    return "none"


def _infer_unet(state: dict) -> dict:
    prefix, depth = "model.model", 1
    while f"{prefix}.{1 if depth == 1 else 3}.model.1.weight" in state:
        prefix = f"{prefix}.{1 if depth == 1 else 3}.model"
        depth += 1
    first = _shape(state, "model.model.0.weight")  # (ngf, in, 4, 4)
    if "model.model.3.weight" not in state:
        raise CheckpointError("not a pix2pix U-Net generator: no model.model.3.weight")
    out_nc = _shape(state, "model.model.3.weight")[1]  # ConvTranspose2d: (in, out, k, k)
    norm = _norm_kind(state, "model.model.0.bias", "model.model.1.model.2")
    netg = {8: "unet_256", 7: "unet_128"}.get(depth)
    if netg is None:
        raise CheckpointError(f"a U-Net generator with {depth} levels: evalkit knows unet_256 "
                              "(8) and unet_128 (7)")
    return {"net_g": netg, "norm": norm, "input_nc": first[1], "ngf": first[0],
            "output_nc": out_nc, "use_dropout": False}


def infer_architecture(state: dict, net_g: str | None = None,
                       norm: str | None = None) -> Pix2PixArchitecture:
    """The generator a (normalized) state dict fits; ``net_g``/``norm`` given by the user
    override inference and must agree with the weights (CheckpointError otherwise)."""
    if net_g is not None and net_g not in NETGS:
        raise CheckpointError(f"unknown --netG {net_g!r}: use one of {', '.join(NETGS)}")
    if norm is not None and norm not in NORMS:
        raise CheckpointError(f"unknown --norm {norm!r}: use one of {', '.join(NORMS)}")
    if "model.model.0.weight" in state:
        found = _infer_unet(state)
    elif "model.1.weight" in state:
        found = _infer_resnet(state)
    else:
        keys = ", ".join(sorted(state)[:3])
        raise CheckpointError(f"not a pix2pix/CycleGAN generator state dict (first keys: "
                              f"{keys}); expected model.1.weight (resnet_*) or "
                              "model.model.0.weight (unet_*)")
    inferred = []
    for field, given in (("net_g", net_g), ("norm", norm)):
        if given is None:
            inferred.append(field)
        elif given != found[field]:
            flag = "--netG" if field == "net_g" else "--norm"
            raise CheckpointError(f"{flag} {given} does not fit the weights, which are a "
                                  f"{found[field]} generator (from their keys and shapes)")
    return Pix2PixArchitecture(**found, inferred=tuple(inferred))


def check_state(state: dict, expected: dict) -> None:
    """Every key the network needs is present with its shape, nothing extra, all finite."""
    missing = [k for k in expected if k not in state]
    if missing:
        raise CheckpointError(f"weight {missing[0]} is missing ({len(missing)} in all): the "
                              "file does not fit the inferred generator")
    extra = [k for k in state if k not in expected]
    if extra:
        raise CheckpointError(f"unexpected weight {extra[0]} ({len(extra)} in all): the file "
                              "does not fit the inferred generator; pass --netG/--norm")
    for key, want in expected.items():
        if list(state[key].shape) != list(want.shape):
            raise CheckpointError(f"weight {key} has shape {list(state[key].shape)}, the "
                                  f"generator needs {list(want.shape)}")
        t = state[key]
        if t.is_floating_point() and not bool(t.isfinite().all()):
            raise CheckpointError(f"weight {key} holds NaN or inf")
