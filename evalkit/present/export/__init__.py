"""Results of an evaluation folder, exported to other tools (TensorBoard, MLflow).

:mod:`evalkit.present.export.points` turns the stored results into per-step series;
:mod:`evalkit.present.export.tensorboard` and :mod:`evalkit.present.export.mlflow` write them with each
tool's own client library. Exports read ``OUT`` only; re-exporting never duplicates a point.
"""
