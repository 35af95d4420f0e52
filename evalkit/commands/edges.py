"""``evalkit edges PHOTOS --out AB_DIR``: the seed's data preparation as a command."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
@click.argument("photos", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Folder for the AB images (edges left, photo right) and detector.json.")
@click.option("--hed-model", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="HED weights: hed_pretrained_bsds.caffemodel (with --hed-proto) or an ONNX "
                   "export. Without it the documented Sobel fallback detector is used.")
@click.option("--hed-proto", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="HED deploy.prototxt (for the Caffe model).")
@click.option("--detector", type=click.Choice(["hed", "sobel"]),
              help="Force a detector [default: hed with --hed-model, else sobel].")
@click.option("--size", type=int, help="Resize photos to SIZE x SIZE first [default: keep].")
@click.option("--format", "fmt", type=click.Choice(["jpg", "png"]), default="jpg",
              show_default=True, help="AB image format (the seed wrote JPEG).")
@click.option("--threshold", type=float, default=25.0 / 255.0, show_default=True,
              help="Edge-probability threshold after NMS (PostprocessHED: 25/255).")
@click.option("--min-component", type=int, default=5, show_default=True,
              help="Remove edge components with fewer pixels (PostprocessHED: 5).")
def edges(photos: Path, out_dir: Path, hed_model, hed_proto, detector, size, fmt, threshold,
          min_component) -> None:
    """Turn the photos in PHOTOS into pix2pix AB pairs with the HED edge recipe.

    Edge detector (HED through OpenCV DNN, or the Sobel fallback) -> the pix2pix
    PostprocessHED recipe (NMS, threshold, thinning, small-component removal, black strokes
    on white) -> AB images; detector.json records which detector made the edges.
    Exit 0 when every photo was converted, 1 when some were skipped, 2 on usage errors.
    """
    from evalkit.edges import HedUnavailable, photos_to_ab

    if size is not None and size < 8:
        raise click.UsageError("--size must be at least 8")
    if not 0.0 <= threshold <= 1.0:
        raise click.UsageError("--threshold is a probability in [0, 1]")
    try:
        result = photos_to_ab(photos, out_dir, detector, hed_model=hed_model,
                              hed_proto=hed_proto, size=size, fmt=fmt, threshold=threshold,
                              min_component=min_component)
    except (ValueError, HedUnavailable) as exc:
        raise click.UsageError(str(exc)) from exc
    for path, reason in result.skipped:
        click.echo(f"skipped {path}: {reason}", err=True)
    if not result.written and not result.skipped:
        raise click.UsageError(f"no images in {photos}")
    click.echo(f"{len(result.written)} AB pairs written to {out_dir} "
               f"(detector {result.detector_id})", err=True)
    sys.exit(1 if result.skipped else 0)
