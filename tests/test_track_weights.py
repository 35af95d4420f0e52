"""[ranking] track_weights: how a track's weight follows the metrics measured there (issue 23
part 3), its validation and what the selection explanation says about it."""

from __future__ import annotations

import pytest

from evalkit.core.config import ConfigError
from evalkit.decide.ranking.rank import RankingConfig, rank_checkpoints, ranking_config
from evalkit.decide.selection import build_selection
from tests.test_ranking import _ckpts, _results

NAMES = ["ckpt-1", "ckpt-2", "ckpt-3"]


def _offline_rows() -> list[tuple]:
    """An offline run: held-out has l1, ssim, psnr (lpips and kid skipped), the sketch
    track adherence alone (kid and lpips skipped); fid (weight 0) skipped on both.
    ckpt-1 is best on the held-out metrics, ckpt-2 on adherence."""
    rows = []
    for i, ck in enumerate(NAMES):
        step = i + 1
        rows += [(ck, step, "heldout", "l1", [0.1, 0.3, 0.2][i]),
                 (ck, step, "heldout", "ssim", [0.9, 0.5, 0.7][i]),
                 (ck, step, "heldout", "psnr", [20.0, 16.0, 18.0][i]),
                 (ck, step, "sketches", "adherence_f1", [0.1, 0.4, 0.2][i]),
                 (ck, step, "sketches", "adherence_precision", 0.5)]  # weight 0
        for ds in ("heldout", "sketches"):
            rows += [(ck, step, ds, m, None, "skipped") for m in ("lpips", "kid", "fid")]
    return rows


def _weights(rule: str) -> dict[tuple[str, str], float]:
    r = rank_checkpoints(_results(_offline_rows()), _ckpts(NAMES), None,
                         RankingConfig(bootstrap=0, track_weights=rule))
    return r.counted.set_index(["dataset", "metric"])["weight"].to_dict()


# stored metric weight: held-out l1 1 + ssim 1 + psnr .5 + lpips 1 + kid 1 = 4.5, of which
# 2.5 measured; sketches adherence_f1 1 + lpips 1 + kid 1 = 3, of which 1 measured.
@pytest.mark.parametrize("rule, expected", [
    # each track keeps half; within held-out l1:ssim:psnr = 1:1:.5
    ("fixed", {"l1": 0.2, "ssim": 0.2, "psnr": 0.1, "adherence_f1": 0.5}),
    # tracks 1 * 2.5/4.5 = 5/9 and 1 * 1/3 = 3/9: held-out 5/8, sketches 3/8
    ("measured", {"l1": 0.25, "ssim": 0.25, "psnr": 0.125, "adherence_f1": 0.375}),
    # every counted metric by its own weight over 3.5 in all
    ("per_metric", {"l1": 2 / 7, "ssim": 2 / 7, "psnr": 1 / 7, "adherence_f1": 2 / 7}),
])
def test_each_rule_gives_its_effective_weights_on_an_offline_sketch_track(rule, expected):
    w = _weights(rule)
    assert {m: v for (_, m), v in w.items()} == pytest.approx(expected, abs=1e-12)
    assert sum(w.values()) == pytest.approx(1.0)


def test_tracks_record_configured_measured_and_effective_weights():
    r = rank_checkpoints(_results(_offline_rows()), _ckpts(NAMES), None,
                         RankingConfig(bootstrap=0, track_weights="measured"))
    t = r.tracks.set_index("dataset")
    assert t.loc["heldout", "configured"] == t.loc["sketches", "configured"] == 0.5
    assert t.loc["heldout", "measured"] == pytest.approx(2.5 / 4.5)
    assert t.loc["sketches", "measured"] == pytest.approx(1 / 3)
    assert t.loc["sketches", "weight"] == pytest.approx(0.375)
    # the weights change the pick: under "fixed" the two halves cancel (every pair ties,
    # the later step wins); under "measured" held-out outweighs adherence: ckpt-1
    fixed = rank_checkpoints(_results(_offline_rows()), _ckpts(NAMES), None,
                             RankingConfig(bootstrap=0, track_weights="fixed"))
    assert (fixed.winner, r.winner) == ("ckpt-3", "ckpt-1")


def test_every_metric_measured_makes_fixed_and_measured_equal():
    rows = [r for r in _offline_rows() if r[3] not in ("lpips", "kid")]
    assert _weights("fixed") != _weights("measured")
    a = rank_checkpoints(_results(rows), _ckpts(NAMES), None,
                         RankingConfig(bootstrap=0, track_weights="fixed"))
    b = rank_checkpoints(_results(rows), _ckpts(NAMES), None,
                         RankingConfig(bootstrap=0, track_weights="measured"))
    assert a.counted["weight"].tolist() == pytest.approx(b.counted["weight"].tolist())
    assert b.tracks["measured"].tolist() == [1.0, 1.0]


def test_track_weights_setting_is_validated_with_file_and_line(tmp_path):
    cfg = tmp_path / "evalkit.toml"
    cfg.write_text('[ranking]\nbootstrap = 10\ntrack_weights = "shrink"\n')
    with pytest.raises(ConfigError, match=r"evalkit.toml:3: 'track_weights' must be one of "
                                          r"'fixed', 'measured', 'per_metric', got 'shrink'"):
        ranking_config(cfg)
    cfg.write_text('[ranking]\ntrack_weights = "per_metric"\n')
    assert ranking_config(cfg).track_weights == "per_metric"
    assert ranking_config(cfg).to_json()["track_weights"] == "per_metric"


@pytest.mark.parametrize("rule, sentence", [
    ("fixed", '[ranking] track_weights = "fixed" keeps its configured weight, 0.50 of the '
              "choice, although 33% of its metric weight was measured."),
    ("measured", '[ranking] track_weights = "measured" cut its weight from 0.50 to 0.38, as '
                 "33% of its metric weight was measured."),
    ("per_metric", '[ranking] track_weights = "per_metric" weighs each counted metric on its '
                   "own, which gives it 0.29 of the choice instead of its configured 0.50."),
])
def test_the_explanation_says_what_the_rule_did_to_a_thin_track(rule, sentence):
    res, ck = _results(_offline_rows()), _ckpts(NAMES)
    ranking = rank_checkpoints(res, ck, None, RankingConfig(bootstrap=0, track_weights=rule))
    sel = build_selection(ranking, res, ck)
    assert sel["rule"]["config"]["track_weights"] == rule
    (thin,) = [t for t in sel["thin_tracks"] if t["dataset"] == "sketches"]
    assert thin["measured"] == pytest.approx(1 / 3) and thin["configured"] == 0.5
    assert ("sketches is thinly measured (only adherence_f1 counts there, so it carries the "
            f"track's whole weight {thin['weight']:.2f}): {sentence}") in sel["explanation"]
    assert {t["dataset"]: t["weight"] for t in sel["rule"]["tracks"]}["sketches"] == \
        pytest.approx(thin["weight"])


def test_the_sentence_for_a_fully_measured_one_metric_track():
    from evalkit.decide.selection import weight_effect

    track = {"configured": 0.5, "measured": 1.0, "weight": 0.5}
    assert weight_effect(track, "measured") == (
        '[ranking] track_weights = "measured" left its weight at 0.50, as 100% of its metric '
        "weight was measured")
    assert weight_effect(track, "fixed") == (
        '[ranking] track_weights = "fixed" keeps its configured weight, 0.50 of the choice')
    assert "raised its weight from 0.30 to 0.40" in weight_effect(
        {"configured": 0.3, "measured": 1.0, "weight": 0.4}, "measured")


def test_boot_winners_are_each_resamples_first_and_pair_two_rules():
    """Ranking.boot_winners (what benchmarks/bench_weight_rule.py compares): one name per
    resample, matching p_first; the same seed draws the same samples, so two rankings of
    the same per-sample values agree resample by resample."""
    import numpy as np

    from tests.test_ranking import _from_samples, _samples

    rng = np.random.default_rng(3)
    vals = {f"ckpt-{i}": rng.normal(0.3, 0.05, 30) for i in (1, 2, 3)}
    a = rank_checkpoints(_from_samples(vals), _ckpts(list(vals)), _samples(vals),
                         RankingConfig(bootstrap=120, track_weights="fixed"))
    b = rank_checkpoints(_from_samples(vals), _ckpts(list(vals)), _samples(vals),
                         RankingConfig(bootstrap=120, track_weights="per_metric"))
    assert len(a.boot_winners) == 120 and len(set(a.boot_winners)) >= 2
    pf = a.table.set_index("checkpoint")["p_first"]
    for name in vals:
        assert a.boot_winners.count(name) / 120 == pytest.approx(pf[name])
    assert a.boot_winners == b.boot_winners
