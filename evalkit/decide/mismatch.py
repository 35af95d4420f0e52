"""The seed's "distribution mismatch" as numbers: each metric on HED inputs vs hand drawings.

The generators were trained on HED edges of photos, but children draw differently; the
seed team chose checkpoints by eye on hand-drawn sketches. :func:`mismatch_table` puts, per
checkpoint and metric, the value on the held-out (HED-edge) dataset beside the value on the
hand-drawn sketch dataset, and their difference ``delta = drawn - hed`` (same units as the
metric). ``worse_on_drawn`` reads the sign through the metric's direction (lower is better
for fid, kid, l1, lpips; higher for ssim, psnr and adherence_*), so ``True`` means the
checkpoint does worse on real drawings than its held-out numbers suggest.

Only metrics both datasets have with status ``ok`` and a value appear: fid and kid (the
sketch dataset's are against the held-out photos, ``ctx.reference``), adherence_*,
and l1/ssim/psnr/lpips only where sketches have reference photos. Caveat for reading
FID/KID deltas: the two sets usually differ in size, and FID is biased at small n; compare
KID, and the ``hed_n``/``drawn_n`` columns.
"""

from __future__ import annotations

import pandas as pd

#: metrics where a lower value is better; everything else is higher-is-better.
LOWER_IS_BETTER = frozenset({"fid", "kid", "l1", "lpips", "kid_std"})
COLUMNS = ["checkpoint", "step", "metric", "hed", "hed_n", "drawn", "drawn_n", "delta",
           "worse_on_drawn", "hed_dataset", "drawn_dataset"]


def _pick(names: list[str], kinds: dict[str, str], kind: str, default: str,
          given: str | None) -> str:
    if given is not None:
        if given not in names:
            raise ValueError(f"dataset '{given}' not in the results (datasets: "
                             f"{', '.join(names) or 'none'})")
        return given
    if default in names:
        return default
    of_kind = [n for n in names if kinds.get(n) == kind]
    if len(of_kind) == 1:
        return of_kind[0]
    param = "hed" if kind == "heldout" else "drawn"
    raise ValueError(f"cannot tell which dataset is the {kind} one (datasets: "
                     f"{', '.join(names) or 'none'}); name it: mismatch_table(..., "
                     f"{param}=NAME)")


def mismatch_table(results: pd.DataFrame, hed: str | None = None,
                   drawn: str | None = None) -> pd.DataFrame:
    """HED vs hand-drawn values side by side, per checkpoint and metric.

    Args:
        results: long results table with at least ``checkpoint, step, dataset, metric,
            value, n, status`` (as :func:`evalkit.store.results.load_results` returns; a ``kind``
            column, when present, helps find the datasets).
        hed: the held-out dataset's name; default ``"heldout"``, else the only dataset of
            kind ``heldout``.
        drawn: the sketch dataset's name; default ``"sketches"``, else the only dataset of
            kind ``sketches``.

    Returns:
        DataFrame with :data:`COLUMNS`: ``hed``/``drawn`` values and their ``n``,
        ``delta = drawn - hed``, ``worse_on_drawn`` (bool, by the metric's direction),
        sorted by step, checkpoint and metric. Empty (with those columns) when no metric is
        ``ok`` on both. Raises ``ValueError`` when the datasets cannot be identified.
        With several domains (a ``domain`` column), each domain's sketches are paired with
        its own held-out set and the tables are concatenated (``hed_dataset`` and
        ``drawn_dataset`` say which).
    """
    if hed is None and drawn is None and "domain" in results.columns and \
            results["domain"].nunique() > 1:
        # one domain at a time: a domain's sketches against its own held-out pairs only
        parts = []
        for _, sub in results.groupby("domain", sort=True):
            try:
                parts.append(mismatch_table(sub.drop(columns="domain")))
            except ValueError:
                continue  # this domain lacks one of the tracks
        return (pd.concat(parts, ignore_index=True) if parts
                else pd.DataFrame(columns=COLUMNS))
    names = sorted(results["dataset"].dropna().unique().tolist()) if len(results) else []
    kinds = {}
    if "kind" in results.columns:
        kinds = results.drop_duplicates("dataset").set_index("dataset")["kind"].to_dict()
    hed = _pick(names, kinds, "heldout", "heldout", hed)
    drawn = _pick(names, kinds, "sketches", "sketches", drawn)
    if hed == drawn:
        raise ValueError(f"the HED and drawn datasets are both '{hed}'")
    ok = results[(results["status"] == "ok") & results["value"].notna()]
    keys = ["checkpoint", "step", "metric"]
    a = ok[ok["dataset"] == hed][keys + ["value", "n"]].rename(
        columns={"value": "hed", "n": "hed_n"})
    b = ok[ok["dataset"] == drawn][keys + ["value", "n"]].rename(
        columns={"value": "drawn", "n": "drawn_n"})
    table = a.merge(b, on=keys, how="inner")
    table["delta"] = table["drawn"] - table["hed"]
    lower = table["metric"].isin(LOWER_IS_BETTER)
    table["worse_on_drawn"] = (lower & (table["delta"] > 0)) | (~lower & (table["delta"] < 0))
    table["hed_dataset"], table["drawn_dataset"] = hed, drawn
    table = table.sort_values(["step", "checkpoint", "metric"], kind="stable")
    return table[COLUMNS].reset_index(drop=True)
