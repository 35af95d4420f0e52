"""The ranking rule: ``[ranking]`` of evalkit.toml, its defaults and validation.

Split from :mod:`evalkit.decide.ranking.rank` (which applies the rule) by job; the rule itself is
documented there and in ``docs/ranking.md``. Every name here is re-exported by
:mod:`evalkit.decide.ranking.rank`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.core.config import ConfigError, find_config, find_line, load_config

#: Which way is better, per known metric.
DIRECTIONS: dict[str, str] = {
    "l1": "lower", "fid": "lower", "kid": "lower", "lpips": "lower",
    "ssim": "higher", "psnr": "higher", "adherence_precision": "higher",
    "adherence_recall": "higher", "adherence_f1": "higher", "bt_score": "higher",
}

#: Default weight per metric. PSNR is a function of the per-image MSE, already close to
#: L1, so it counts half; FID is biased at the small n of evaluation sets and KID is the
#: number to compare there, so FID is shown but not counted; adherence precision and recall
#: are summarized by their F1.
DEFAULT_METRIC_WEIGHTS: dict[str, float] = {
    "l1": 1.0, "ssim": 1.0, "psnr": 0.5, "lpips": 1.0, "kid": 1.0, "fid": 0.0,
    "adherence_f1": 1.0, "adherence_precision": 0.0, "adherence_recall": 0.0,
    "bt_score": 1.0,
}

#: Default weight per track (dataset name or kind): hand-drawn counts as much as held-out.
DEFAULT_TRACK_WEIGHTS: dict[str, float] = {"heldout": 1.0, "sketches": 1.0}

#: The reviewers' track (kind ``human``, :mod:`evalkit.decide.review`): unless ``[ranking.tracks]``
#: names it, its weight is 0 below this many votes in the domain, then the sketch track's.
HUMAN_KIND = "human"
HUMAN_MIN_VOTES = 30

DEFAULT_BOOTSTRAP = 1000
DEFAULT_SEED = 0
SET_LEVEL_MODES = ("ci", "fixed")
RANKING_KEYS = {"method", "bootstrap", "seed", "set_level", "stable_at", "tracks", "metrics",
                "track_weights"}
#: ``[ranking] track_weights``: how a track's weight follows the metrics measured there
#: (:func:`evalkit.decide.ranking.scores.effective_weights`, docs/ranking.md).
TRACK_WEIGHT_RULES: dict[str, str] = {
    "fixed": "each counted track keeps its [ranking.tracks] weight however few of its "
             "metrics were measured",
    "measured": "each track's [ranking.tracks] weight is scaled by the share of its metric "
                "weight that was measured (counted / stored), then renormalized",
    "per_metric": "every counted metric weighs its track weight times its metric weight, "
                  "normalized over all tracks together (a track with more measured metrics "
                  "weighs more)",
}
DEFAULT_TRACK_WEIGHT_RULE = "measured"
#: A pick is called stable when it comes first in at least this share of bootstrap
#: resamples (``[ranking] stable_at``).
DEFAULT_STABLE_AT = 0.5
METRIC_KEYS = {"weight", "direction"}
#: ``[ranking] method``: the names and what they are called in reports.
METHODS: dict[str, str] = {
    "pairwise": "weighted pairwise majority (Schulze; ties by weighted normalized ranks)",
    "ranks": "weighted normalized ranks",
}
DEFAULT_METHOD = "pairwise"
METHOD = METHODS[DEFAULT_METHOD]
#: What the ranking's ``score`` is, per method (reports and explanations say it).
SCORE_TEXT: dict[str, str] = {
    "pairwise": ("share of the other checkpoints that come before it head to head (one "
                 "beats another when it is better on a larger weighted share of the counted "
                 "metrics; the order follows the strongest chains of such wins, Schulze's "
                 "method; ties count half): 0 = first, 1 = last; ties by the weighted mean "
                 "of normalized ranks among the tied checkpoints"),
    "ranks": ("weighted mean of normalized ranks: 0 = best on every counted metric, "
              "1 = worst"),
}
_Z95 = 1.959963984540054


@dataclass
class MetricRule:
    """How one metric counts: weight >= 0 (0 = shown, not counted) and better direction."""

    metric: str
    weight: float
    direction: str


@dataclass
class RankingConfig:
    """The validated ``[ranking]`` section (or the defaults).

    Attributes:
        method: ``"pairwise"`` (default) or ``"ranks"``: see :mod:`evalkit.decide.ranking.rank`.
        metrics: metric name -> rule; only these metrics can count.
        tracks: dataset name or kind -> weight >= 0.
        tracks_given: whether ``[ranking.tracks]`` was in the file (then a dataset it does
            not name, by name or kind, has weight 0; otherwise 1).
        bootstrap: number of bootstrap resamples (0 = no stability estimate).
        seed: bootstrap seed.
        set_level: ``"ci"`` or ``"fixed"``, see the module docstring.
        stable_at: P(first) in (0, 1] from which a pick is called stable (``select``).
        track_weights: how a track's weight follows its measured metrics, one of
            :data:`TRACK_WEIGHT_RULES` (``[ranking] track_weights``).
        source: the config file the section came from, or None for the defaults.
    """

    method: str = DEFAULT_METHOD
    metrics: dict[str, MetricRule] = field(default_factory=lambda: {
        m: MetricRule(m, w, DIRECTIONS[m]) for m, w in DEFAULT_METRIC_WEIGHTS.items()})
    tracks: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TRACK_WEIGHTS))
    tracks_given: bool = False
    bootstrap: int = DEFAULT_BOOTSTRAP
    seed: int = DEFAULT_SEED
    set_level: str = "ci"
    stable_at: float = DEFAULT_STABLE_AT
    track_weights: str = DEFAULT_TRACK_WEIGHT_RULE
    source: Path | None = None

    def track_weight(self, dataset: str, kind: str | None) -> float:
        """Weight of a dataset: by its name, else by its kind, else 0 (tracks given) or 1."""
        if dataset in self.tracks:
            return self.tracks[dataset]
        if kind is not None and kind in self.tracks:
            return self.tracks[kind]
        return 0.0 if self.tracks_given else 1.0

    def human_weight(self, dataset: str, votes: int, sketch_weight: float
                     ) -> tuple[float, str]:
        """Weight of a ``human`` track with ``votes`` counted votes, and the rule that
        gave it: the configured weight when ``[ranking.tracks]`` names it (by name or
        kind), else 0 below :data:`HUMAN_MIN_VOTES` votes, else ``sketch_weight`` (the
        domain's hand-drawn track)."""
        for key in (dataset, HUMAN_KIND):
            if key in self.tracks:
                return self.tracks[key], f"weight {self.tracks[key]:g} set in [ranking.tracks]"
        if votes < HUMAN_MIN_VOTES:
            return 0.0, (f"weight 0, as {votes} vote(s) are fewer than {HUMAN_MIN_VOTES}: "
                         f"the default counts the human track from {HUMAN_MIN_VOTES} votes "
                         "on")
        return sketch_weight, (f"weight {sketch_weight:g}, equal to the sketch track, as "
                               f"{votes} votes reach {HUMAN_MIN_VOTES}; [ranking.tracks] "
                               "human = W overrides this default")

    def to_json(self) -> dict[str, Any]:
        return {"method": METHODS[self.method], "method_key": self.method,
                "source": str(self.source) if self.source else None,
                "metrics": {m: {"weight": r.weight, "direction": r.direction}
                            for m, r in self.metrics.items()},
                "tracks": dict(self.tracks), "bootstrap": self.bootstrap, "seed": self.seed,
                "set_level": self.set_level, "stable_at": self.stable_at,
                "track_weights": self.track_weights}


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def ranking_config(path: str | Path | None) -> RankingConfig:
    """Read and validate ``[ranking]`` of an evalkit.toml; ``None`` (or no section) gives
    the defaults. Raises :class:`ConfigError` naming ``file:line`` and what to fix."""
    if path is None:
        return RankingConfig()
    cfg = load_config(path)
    raw = cfg.raw.get("ranking")
    if raw is None:
        return RankingConfig(source=cfg.path)
    text = cfg.text

    def where(key: str, section: str = "ranking") -> str:
        line = find_line(text, key, section)
        return f"{cfg.path}:{line}" if line else str(cfg.path)

    if not isinstance(raw, dict):
        raise ConfigError(f"{where('ranking', None)}: 'ranking' must be a table ([ranking])")
    out = RankingConfig(source=cfg.path)
    for key in raw:
        if key not in RANKING_KEYS:
            raise ConfigError(f"{where(key)}: unknown key '{key}' in [ranking]; known keys: "
                              f"{', '.join(sorted(RANKING_KEYS))}")

    def one_of(key: str, allowed) -> str:
        value = raw[key]
        if value not in allowed:
            raise ConfigError(f"{where(key)}: '{key}' must be one of "
                              f"{', '.join(repr(k) for k in allowed)}, got {value!r}")
        return value

    if "method" in raw:
        out.method = one_of("method", METHODS)
    if "bootstrap" in raw:
        b = raw["bootstrap"]
        if not isinstance(b, int) or isinstance(b, bool) or b < 0:
            raise ConfigError(f"{where('bootstrap')}: 'bootstrap' must be an integer >= 0 "
                              f"(number of resamples), got {b!r}")
        out.bootstrap = b
    if "seed" in raw:
        s = raw["seed"]
        if not isinstance(s, int) or isinstance(s, bool) or s < 0:
            raise ConfigError(f"{where('seed')}: 'seed' must be an integer >= 0, got {s!r}")
        out.seed = s
    if "set_level" in raw:
        out.set_level = one_of("set_level", SET_LEVEL_MODES)
    if "track_weights" in raw:
        out.track_weights = one_of("track_weights", TRACK_WEIGHT_RULES)
    if "stable_at" in raw:
        v = raw["stable_at"]
        if not _is_number(v) or not 0 < v <= 1:
            raise ConfigError(f"{where('stable_at')}: 'stable_at' must be a number in (0, 1] "
                              f"(the P(first) from which a pick is stable), got {v!r}")
        out.stable_at = float(v)
    if "tracks" in raw:
        tracks = raw["tracks"]
        if not isinstance(tracks, dict):
            raise ConfigError(f"{where('tracks')}: 'tracks' must be a table of dataset "
                              "name (or kind) = weight")
        for name, w in tracks.items():
            if not _is_number(w) or w < 0:
                raise ConfigError(f"{where(name, 'ranking.tracks')}: track weight of "
                                  f"'{name}' must be a number >= 0, got {w!r}")
        if not any(w > 0 for w in tracks.values()):
            raise ConfigError(f"{where('tracks')}: every track weight in [ranking.tracks] "
                              "is 0: nothing would count")
        out.tracks = {k: float(v) for k, v in tracks.items()}
        out.tracks_given = True
    if "metrics" in raw:
        metrics = raw["metrics"]
        if not isinstance(metrics, dict) or not metrics:
            raise ConfigError(f"{where('metrics')}: 'metrics' must be a non-empty table of "
                              "metric = weight or metric = {weight = W, direction = "
                              "\"lower\"|\"higher\"}")
        rules: dict[str, MetricRule] = {}
        for name, spec in metrics.items():
            section = f"ranking.metrics.{name}"
            at = where(name, "ranking.metrics")
            if isinstance(spec, dict):
                unknown = set(spec) - METRIC_KEYS
                if unknown:
                    k = sorted(unknown)[0]
                    at_k = where(k, section) if find_line(text, k, section) else at
                    raise ConfigError(f"{at_k}: unknown key '{k}' for metric '{name}'; "
                                      f"known keys: {', '.join(sorted(METRIC_KEYS))}")
                weight = spec.get("weight", 1.0)
                direction = spec.get("direction")
                at_w = where("weight", section) if find_line(text, "weight", section) else at
            else:
                weight, direction, at_w = spec, None, at
            if not _is_number(weight) or weight < 0:
                raise ConfigError(f"{at_w}: weight of metric '{name}' must be a number >= 0, "
                                  f"got {weight!r}")
            if direction is None:
                direction = DIRECTIONS.get(name)
                if direction is None:
                    raise ConfigError(
                        f"{at}: evalkit does not know whether lower or higher '{name}' is "
                        f"better: write {name} = {{ weight = {weight}, direction = "
                        "\"lower\" }} (or \"higher\")")
            elif direction not in ("lower", "higher"):
                at_d = (where("direction", section) if find_line(text, "direction", section)
                        else at)
                raise ConfigError(f"{at_d}: direction of metric '{name}' must be \"lower\" "
                                  f"or \"higher\", got {direction!r}")
            rules[name] = MetricRule(name, float(weight), direction)
        if not any(r.weight > 0 for r in rules.values()):
            raise ConfigError(f"{where('metrics')}: every metric weight in [ranking.metrics] "
                              "is 0: nothing would count")
        out.metrics = rules
    return out


def config_for(out_dir: str | Path, config_path: str | Path | None = None) -> Path | None:
    """The evalkit.toml whose ``[ranking]`` applies to ``out_dir``: ``config_path`` if given,
    else the one found for the run folder of the latest run recorded there (see
    :func:`evalkit.core.config.find_config`), else None (defaults)."""
    if config_path is not None:
        return Path(config_path)
    from evalkit.store.results import Store

    with Store(out_dir, create=False) as store:
        runs = store.runs()
    for run_dir in reversed(runs["run_dir"].dropna().tolist()):
        if Path(run_dir).is_dir():
            return find_config(Path(run_dir))
    return None
