"""``evalkit edges PHOTOS --out AB_DIR``: the seed's data preparation as a command.

Also ``evalkit edges --convert-hed PROTOTXT CAFFEMODEL --out hed.onnx``: convert the Caffe
HED model once to ONNX, which the installed OpenCV (5.x, no Caffe importer) runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

FALLBACK_WARNING = (
    "warning: no HED model given, using the fallback detector {det}: these pairs are NOT "
    "HED edges (on a photo it marks texture and shading HED ignores, and breaks outlines "
    "into more pieces), so models trained on HED pairs will score differently on them. "
    "For the seed's edges pass --hed-model (see docs/edges.md: the original HED release's "
    "hed_pretrained_bsds.caffemodel + deploy.prototxt, converted once with "
    "`evalkit edges --convert-hed`).")


@click.command()
@click.argument("photos", required=False,
                type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Folder for the AB images (edges left, photo right) and detector.json; "
                   "with --convert-hed, the ONNX file to write.")
@click.option("--hed-model", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="HED weights: an ONNX model (see --convert-hed), or "
                   "hed_pretrained_bsds.caffemodel with --hed-proto on an OpenCV that still "
                   "imports Caffe (4.x). Without it the documented Sobel fallback is used.")
@click.option("--hed-proto", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="HED deploy.prototxt (for the Caffe model).")
@click.option("--convert-hed", nargs=2, metavar="PROTOTXT CAFFEMODEL",
              type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="Convert the Caffe HED model to ONNX (written to --out) and exit.")
@click.option("--detector", type=click.Choice(["hed", "sobel"]),
              help="Force a detector [default: hed with --hed-model, else sobel].")
@click.option("--size", type=int, help="Resize photos to SIZE x SIZE first [default: keep].")
@click.option("--format", "fmt", type=click.Choice(["jpg", "png"]), default="jpg",
              show_default=True, help="AB image format (the seed wrote JPEG).")
@click.option("--threshold", type=float, default=25.0 / 255.0, show_default=True,
              help="Edge-probability threshold after NMS (PostprocessHED: 25/255).")
@click.option("--min-component", type=int, default=5, show_default=True,
              help="Remove edge components with fewer pixels (PostprocessHED: 5).")
@click.option("--keep-blank", is_flag=True,
              help="Write pairs whose edge map is empty too (default: warn and skip them).")
def edges(photos: Path | None, out_dir: Path, hed_model, hed_proto, convert_hed, detector,
          size, fmt, threshold, min_component, keep_blank) -> None:
    """Turn the photos in PHOTOS into pix2pix AB pairs with the HED edge recipe.

    Edge detector (HED through OpenCV DNN, or the Sobel fallback, with a warning) -> the
    pix2pix PostprocessHED recipe (NMS, threshold, thinning, small-component removal, black
    strokes on white) -> AB images; detector.json records which detector made the edges.
    A photo that cannot be read or processed is listed and skipped; the others go on. A
    photo whose edge map is empty (flat, blank, fully transparent) is warned about and
    skipped, unless --keep-blank (then written, still warned about). Exit 0 when every photo was converted, 1 when some were skipped, 2 on usage errors.
    """
    from evalkit.inputs.edges import FALLBACK_ID, HedUnavailable, photos_to_ab

    if convert_hed:
        _convert(convert_hed, out_dir)
        return
    if photos is None:
        raise click.UsageError("give the PHOTOS folder (or --convert-hed PROTOTXT CAFFEMODEL)")
    if out_dir.exists() and not out_dir.is_dir():
        raise click.UsageError(f"--out {out_dir} is a file: give a folder for the AB pairs")
    if size is not None and size < 8:
        raise click.UsageError("--size must be at least 8")
    if not 0.0 <= threshold <= 1.0:
        raise click.UsageError("--threshold is a probability in [0, 1]")
    try:
        result = photos_to_ab(photos, out_dir, detector, hed_model=hed_model,
                              hed_proto=hed_proto, size=size, fmt=fmt, threshold=threshold,
                              min_component=min_component, keep_blank=keep_blank)
    except (ValueError, HedUnavailable) as exc:
        raise click.UsageError(str(exc)) from exc
    if result.detector_id.startswith(FALLBACK_ID):
        click.echo(FALLBACK_WARNING.format(det=result.detector_id), err=True)
    blank = set(result.blank)
    for path, reason in result.skipped:
        click.echo(f"{'warning: ' if path in blank else ''}skipped {path}: {reason}", err=True)
    if keep_blank:
        for path in result.blank:
            click.echo(f"warning: {path}: edge map is empty; written as a blank pair "
                       "(--keep-blank)", err=True)
    if not result.written and not result.skipped:
        raise click.UsageError(f"no images in {photos}")
    click.echo(f"{len(result.written)} AB pairs written to {out_dir} "
               f"(detector {result.detector_id}); {len(result.skipped)} skipped"
               + (f" ({len(blank)} with an empty edge map)" if blank and not keep_blank else "")
               + (f"; {len(blank)} blank pair(s) kept" if blank and keep_blank else ""),
               err=True)
    sys.exit(1 if result.skipped else 0)


def _convert(files: tuple[Path, Path], out: Path) -> None:
    """``--convert-hed``: Caffe prototxt + caffemodel -> ONNX at ``out``."""
    from evalkit.inputs.edges.convert import ConvertError, caffe_to_onnx

    proto, model = files
    if proto.suffix.lower() == ".caffemodel" and model.suffix.lower() != ".caffemodel":
        proto, model = model, proto  # accept either order
    if out.suffix.lower() != ".onnx":
        raise click.UsageError(f"--out {out}: with --convert-hed, name the .onnx file to write")
    try:
        path = caffe_to_onnx(proto, model, out)
    except ConvertError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"wrote {path}: use it with `evalkit edges PHOTOS --out AB_DIR --hed-model "
               f"{path}`")
