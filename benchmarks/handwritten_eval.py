"""A plain, hand-written checkpoint evaluation: the baseline evalkit is compared with.

What an ad-hoc evaluation script does: for each checkpoint, build the generator, restore its
weights, then for each held-out pair open the files, apply the serving contract, call the
model eagerly on one image, post-process like serving, and feed fresh torchmetrics objects
(SSIM, PSNR, FID, KID; L1 with numpy) created anew for every checkpoint (so the real
photos' Inception features are recomputed per checkpoint). No caching, no store.

Used by ``benchmarks/bench_run.py`` (same data, same checkpoints, same feature module).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def evaluate(run_dir: Path, heldout: Path, feature_module, size: int = 256) -> dict:
    """``{checkpoint prefix: {metric: value}}`` for every ``ckpt-N.index`` in ``run_dir``."""
    import torch
    from torchmetrics.image import (
        PeakSignalNoiseRatio,
        StructuralSimilarityIndexMeasure,
    )
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    from evalkit.core.tf import tf
    from evalkit.inputs.checkpoints.load import (
        assign_weights,
        infer_architecture,
        read_generator_weights,
        read_shapes,
    )
    from evalkit.inputs.models import resnet_generator

    files = sorted(heldout.glob("*.png"))
    results = {}
    for index in sorted(run_dir.glob("ckpt-*.index")):
        prefix = str(index.with_suffix(""))
        width = infer_architecture(read_shapes(prefix)).hidden_channels
        model = resnet_generator(1, 3, width)
        model(tf.zeros((1, size, size, 1)))
        assign_weights(model, read_generator_weights(prefix, model))
        ssim = StructuralSimilarityIndexMeasure(data_range=255.0, gaussian_kernel=True,
                                                sigma=1.5)
        psnr = PeakSignalNoiseRatio(data_range=255.0)
        fid = FrechetInceptionDistance(feature=feature_module, normalize=False)
        kid = KernelInceptionDistance(feature=feature_module, subset_size=min(len(files), 50))
        l1 = []
        for f in files:
            ab = Image.open(f).convert("RGB")
            w, h = ab.size
            a = ab.crop((0, 0, w // 2, h)).resize((size, size)).convert("L")
            b = np.asarray(ab.crop((w // 2, 0, w, h)).resize((size, size)))
            x = np.clip(np.asarray(a, np.float32) / 255.0, 0, 1)[None, ..., None]
            y = model(x, training=False).numpy()[0]
            out = np.clip(((y + 1) * 127.5).astype(np.int32), 0, 255).astype(np.uint8)
            l1.append(float(np.abs(y - (b.astype(np.float32) / 127.5 - 1)).mean()))
            to = torch.from_numpy(out).permute(2, 0, 1)[None]
            tb = torch.from_numpy(b.copy()).permute(2, 0, 1)[None]
            ssim.update(to.float(), tb.float())
            psnr.update(to.float(), tb.float())
            for m in (fid, kid):
                m.update(tb, real=True)
                m.update(to, real=False)
        results[prefix] = {"l1": float(np.mean(l1)), "ssim": float(ssim.compute()),
                           "psnr": float(psnr.compute()), "fid": float(fid.compute()),
                           "kid": float(kid.compute()[0])}
    return results
