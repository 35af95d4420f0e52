"""Feature extractors for FID/KID, their identity, and the on-disk cache of image features.

Two kinds of extractor map a uint8 ``(N, 3, H, W)`` tensor in [0, 255] to ``(N, D)`` features:

* **standard** (:func:`inception_extractor`): torchmetrics' ``NoTrainInceptionV3`` (the
  torch-fidelity port of the TF Inception-v3 graph the original FID code used, Heusel et al.
  2017), pool3 features, D = 2048, loaded ONLY from the local, hash-checked file
  ``weights-inception-2015-12-05-6726825d.pth`` (:mod:`evalkit.measure.weights`); a missing file
  raises :class:`evalkit.measure.weights.WeightsMissing`, nothing is downloaded. Images are resized
  to 299x299 inside the module: with ``antialias=False`` (evalkit's default) by the
  TensorFlow-1-compatible bilinear resize that the TF FID code and torch-fidelity use, so values
  compare with published FID; ``antialias=True`` is torchmetrics' own default since 1.8
  (bilinear with antialiasing), recorded as a different ``resize`` and not comparable.
* **custom** (:func:`torchscript_extractor`): a TorchScript file (``--feature-extractor
  FILE.pt``) taking the same uint8 NCHW input; it sees the images unchanged (any resizing is
  its own business). Values are internally consistent but NOT comparable with published FID.

An extractor's :class:`ExtractorIdentity` (name, sha256 of its weights/TorchScript file,
resize setting, D) keys caches and is recorded with every value.

:class:`FeatureCache` stores features under ``ctx.cache_dir / "features"``: real-image
features keyed by (real-set key from the dataset content hash, extractor identity), so they are
extracted once per dataset however many checkpoints follow; generated-image features keyed by
(sha256 of the served outputs, extractor identity), so recomputing a checkpoint's metrics never
re-runs the extractor on the same outputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.core.faults import remove_stale_temps
from evalkit.core.hashing import combine
from evalkit.inputs.data.samples import CHUNK_ROWS, iter_chunks
from evalkit.measure import weights as W

#: bump when the cache layout or feature semantics change
CACHE_VERSION = "features-v1"
INCEPTION_NAME = "inception-v3-compat/2015-12-05"
INCEPTION_DIM = 2048
RESIZE_TF1 = "299x299 bilinear, TF1-compatible (torch-fidelity), no antialias"
RESIZE_ANTIALIAS = "299x299 bilinear with antialias (torchmetrics >=1.8 default)"
RESIZE_CUSTOM = "none by evalkit (the module's own)"


@dataclass(frozen=True)
class ExtractorIdentity:
    """Who produced a set of features.

    Attributes:
        name: ``inception-v3-compat/2015-12-05`` or ``torchscript:<file name>``.
        sha256: sha256 of the weights file (standard) or of the TorchScript file (custom).
        resize: how images reach the network (see the module docstring).
        num_features: D.
        standard: the FID-standard Inception extractor.
        antialias: the torchmetrics resize flag (None for custom extractors).
    """

    name: str
    sha256: str
    resize: str
    num_features: int
    standard: bool
    antialias: bool | None = None

    @property
    def comparable(self) -> bool:
        """Values compare with published FID/KID: standard weights AND the TF1-style resize."""
        return self.standard and self.antialias is False

    def key(self) -> str:
        return combine([CACHE_VERSION, self.name, self.sha256, self.resize,
                        str(self.num_features)])

    def flags(self) -> dict[str, Any]:
        """Facts stored beside every FID/KID value."""
        return {"extractor": self.name, "extractor_sha256": self.sha256,
                "feature_dim": self.num_features, "resize": self.resize,
                "antialias": self.antialias, "standard_extractor": self.standard,
                "comparable": self.comparable}


class FeatureExtractor:
    """A loaded extractor: ``extractor(images_nhwc_uint8) -> (N, D) float64``.

    ``images_seen`` counts images passed through the network (tests use it to prove caching).
    """

    def __init__(self, module: Any, identity: ExtractorIdentity, batch_size: int = 32,
                 device: str = "cpu"):
        self.module = module
        self.identity = identity
        self.batch_size = batch_size
        self.device = device
        self.images_seen = 0

    def __call__(self, images: np.ndarray) -> np.ndarray:
        import torch

        if not hasattr(images, "shape"):
            images = np.asarray(images)
        # a DiskArray (evalkit.inputs.data.samples) streams: only one batch is read at a time
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected uint8 (N, H, W, 3) images, got {images.dtype} "
                             f"{images.shape}")
        d = self.identity.num_features
        out = []
        with torch.no_grad():
            for i in range(0, len(images), self.batch_size):
                x = torch.from_numpy(np.ascontiguousarray(images[i:i + self.batch_size]))
                x = x.permute(0, 3, 1, 2).contiguous().to(self.device)
                f = self.module(x)
                if isinstance(f, (tuple, list)):
                    f = f[0]
                f = f.reshape(x.shape[0], -1).double().cpu().numpy()
                if f.shape[1] != d:
                    raise ValueError(f"extractor {self.identity.name} returned {f.shape[1]} "
                                     f"features per image, expected {d}")
                out.append(f)
                self.images_seen += x.shape[0]
        feats = np.concatenate(out) if out else np.zeros((0, d))
        if not np.isfinite(feats).all():
            raise ValueError(f"extractor {self.identity.name} returned non-finite features")
        return feats


def inception_extractor(antialias: bool = False, batch_size: int = 32,
                        device: str = "cpu") -> FeatureExtractor:
    """The FID-standard Inception-v3 pool3 extractor, from the local weights file only.

    Raises:
        WeightsMissing: the weights file is absent or fails its hash check.
    """
    path = W.resolve("inception")
    from torchmetrics.image.fid import NoTrainInceptionV3

    module = NoTrainInceptionV3(name="inception-v3-compat", features_list=[str(INCEPTION_DIM)],
                                feature_extractor_weights_path=str(path), antialias=antialias)
    module = module.to(device).eval()
    ident = ExtractorIdentity(name=INCEPTION_NAME, sha256=W.cached_sha256(path),
                              resize=RESIZE_ANTIALIAS if antialias else RESIZE_TF1,
                              num_features=INCEPTION_DIM, standard=True, antialias=antialias)
    return FeatureExtractor(module, ident, batch_size=batch_size, device=device)


def torchscript_extractor(path: str | Path, batch_size: int = 32,
                          device: str = "cpu") -> FeatureExtractor:
    """A user TorchScript module: uint8 ``(N, 3, H, W)`` in [0, 255] -> ``(N, D)`` float.

    D is read from a ``num_features`` attribute when the module has one, else from one call
    on a dummy 2x3x64x64 batch.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"feature extractor {path} not found")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.load is deprecated"
        module = torch.jit.load(str(path), map_location=device).eval()
    d = getattr(module, "num_features", None)
    if isinstance(d, torch.Tensor):
        d = int(d.item())
    if not isinstance(d, int):
        with torch.no_grad():
            probe = module(torch.zeros(2, 3, 64, 64, dtype=torch.uint8, device=device))
        if isinstance(probe, (tuple, list)):
            probe = probe[0]
        d = int(probe.reshape(2, -1).shape[1])
    ident = ExtractorIdentity(name=f"torchscript:{path.name}", sha256=W.file_sha256(path),
                              resize=RESIZE_CUSTOM, num_features=d, standard=False)
    return FeatureExtractor(module, ident, batch_size=batch_size, device=device)


def load_extractor(feature_extractor: str | Path | None = None, antialias: bool = False,
                   batch_size: int = 32, device: str = "cpu") -> FeatureExtractor:
    """The custom TorchScript extractor when a path is given, else the standard Inception."""
    if feature_extractor is not None:
        return torchscript_extractor(feature_extractor, batch_size=batch_size, device=device)
    return inception_extractor(antialias=antialias, batch_size=batch_size, device=device)


def array_digest(images) -> str:
    """sha256 over an array's dtype, shape and bytes (keys generated-image features); a
    disk array (:mod:`evalkit.inputs.data.samples`) is read in chunks, with the same digest."""
    if not hasattr(images, "shape"):
        images = np.asarray(images)
    shape = tuple(images.shape)
    h = hashlib.sha256(f"{np.dtype(images.dtype).str}{shape}".encode())
    for _, chunk in iter_chunks(images, chunk=CHUNK_ROWS * 4):
        h.update(memoryview(np.ascontiguousarray(chunk)).cast("B"))
    return h.hexdigest()


def real_set_key(content_hash: str, mask: np.ndarray | None, role: str = "targets") -> str:
    """Key of a set of real images: a dataset's content hash, which rows, and which images."""
    rows = "all" if mask is None else hashlib.sha256(
        np.asarray(mask, dtype=bool).tobytes()).hexdigest()
    return combine([role, content_hash, rows])


class FeatureCache:
    """Features on disk: ``ROOT/<real|fake>/<key>.npy`` with a ``.json`` sidecar.

    ``hits`` and ``misses`` count lookups (per kind) for tests and logs.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        remove_stale_temps(self.root, "*/*.tmp*")  # left by killed processes
        self.hits: dict[str, int] = {"real": 0, "fake": 0}
        self.misses: dict[str, int] = {"real": 0, "fake": 0}

    def path(self, kind: str, set_key: str, extractor: ExtractorIdentity) -> Path:
        return self.root / kind / f"{combine([set_key, extractor.key()])}.npy"

    def get_or_extract(self, kind: str, set_key: str, extractor: FeatureExtractor,
                       images: np.ndarray, meta: dict | None = None) -> np.ndarray:
        """Cached features of ``images`` under (``set_key``, extractor identity), or extract
        and store them. A cached file with the wrong shape is ignored and rewritten."""
        ident = extractor.identity
        p = self.path(kind, set_key, ident)
        if p.is_file():
            try:
                feats = np.load(p, allow_pickle=False)
            except (OSError, ValueError):
                feats = None
            if feats is not None and feats.shape == (len(images), ident.num_features):
                self.hits[kind] += 1
                return feats
        self.misses[kind] += 1
        feats = extractor(images)
        self._save(p, feats, {"kind": kind, "set_key": set_key, "n": int(len(images)),
                              "extractor": asdict(ident), **(meta or {})})
        return feats

    @staticmethod
    def _save(p: Path, feats: np.ndarray, meta: dict) -> None:
        p.parent.mkdir(parents=True, exist_ok=True)
        # <key>.npy.tmp<PID>: a killed process's file is removed by the next FeatureCache
        tmp = str(p.with_name(f"{p.name}.tmp{os.getpid()}"))
        try:
            with open(tmp, "wb") as f:
                np.save(f, feats, allow_pickle=False)
            os.replace(tmp, p)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        p.with_suffix(".json").write_text(json.dumps(meta, indent=1, default=str))
