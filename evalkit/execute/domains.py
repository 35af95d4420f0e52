"""Which checkpoints belong to which domain, and which data each domain is evaluated on.

The service runs one generator per domain (car, person, shoe, ...); a number that mixes two
domains measures no model anyone serves. :func:`plan_domains` turns ``evalkit run RUN_DIR``
plus the data options into one :class:`DomainPlan` per domain:

* **Root layout** (the seed's ``checkpoints/`` with ``car/ckpt-N.*``, ``shoe/ckpt-N.*``): a
  checkpoint's domain is the first folder under ``RUN_DIR`` when that folder is a *known*
  domain: a ``[domains.<d>]`` table of ``evalkit.toml``, a domain of the sketch set
  (manifest ``domain`` or its subfolders), or a subfolder ``<held-out root>/<d>/``.
  Checkpoints outside every known domain folder are not evaluated and are listed in the
  plan's notes (never silently dropped).
* **One domain folder** (``checkpoints/car/``): the domain is ``--domain``, else ``[run]
  domain``, else the folder's own name when it is a known domain, else the only domain of
  the data. A multi-domain sketch set with no way to choose is a :class:`DomainError`
  (exit 2) that lists the domains: sketches are never pooled silently.
* ``--domain all`` pools every domain's sketches into one evaluation, on request only; the
  pooled sketches are named ``sketches/all`` (:data:`evalkit.inputs.data.dataset.POOLED`).
  Only what is pooled is labelled ``all``: a held-out folder of one domain keeps that
  domain's name (``heldout/car``; :func:`pooled_heldout_domain`), and one whose domain is
  unknown is named ``heldout``. All of the run's datasets are still ranked together (the
  plan's domain, ``all``).

Each domain gets its held-out pairs from ``<held-out>/<d>/`` (or a held-out folder of its
own: ``[domains.<d>] heldout``, or a flat held-out folder in a one-domain run) and the
sketches of domain ``d`` from the sketch set. Checkpoint names carry the domain
(``car/ckpt-3``) however the run was started, so evaluating ``checkpoints/`` and then
``checkpoints/car/`` into one OUT finds the same stored evaluations.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from evalkit.inputs.checkpoints.discover import CheckpointRef
from evalkit.inputs.data.dataset import POOLED, Dataset

#: Folder names that are held-out layouts, never domains.
_LAYOUT_DIRS = {"A", "B"}


class DomainError(ValueError):
    """The run's domains cannot be determined safely (exit 2); the message says how."""


@dataclass
class DomainPlan:
    """One domain's share of a run.

    Attributes:
        domain: ``car``...; ``""`` for a run without domains; ``"all"`` when pooled.
        run_dir: the folder its checkpoints were found in.
        refs: its checkpoints, named with the domain (``car/ckpt-3``), in step order.
        heldout: its held-out pairs folder, or None.
        sketches: the sketch set to take its sketches from, or None.
        datasets: filled by the caller after loading (held-out first).
        notes: what the planner decided that the user should read.
        heldout_domain: the domain the held-out set is named by when it differs from
            ``domain`` (a pooled run's held-out folder of one domain); None = ``domain``.
    """

    domain: str
    run_dir: Path
    refs: list[CheckpointRef]
    heldout: Path | None = None
    sketches: Path | None = None
    datasets: list[Dataset] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    heldout_domain: str | None = None


def sketch_domains(sketches: Path | None) -> list[str]:
    """Domains of a sketch set: its manifest's, else its subfolders that hold images."""
    if sketches is None or not Path(sketches).is_dir():
        return []
    from evalkit.inputs.sketches.manifest import MANIFEST_NAME, ManifestError, read_manifest

    root = Path(sketches)
    if (root / MANIFEST_NAME).is_file():
        try:
            return [d for d in read_manifest(root).domains() if d]
        except ManifestError:
            return []  # the loader reports the broken manifest with its fix
    from evalkit.inputs.data.pairs import IMAGE_EXTENSIONS

    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith(".")
                  and any(f.suffix.lower() in IMAGE_EXTENSIONS for f in p.rglob("*")))


def heldout_domains(heldout: Path | None) -> list[str]:
    """Subfolders of a held-out root that are domains (not the ``A/``/``B/`` layout)."""
    if heldout is None or not Path(heldout).is_dir():
        return []
    root = Path(heldout)
    if (root / "A").is_dir() and (root / "B").is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and p.name not in _LAYOUT_DIRS)


def _named(ref: CheckpointRef, name: str) -> CheckpointRef:
    return dataclasses.replace(ref, name=name)


def plan_domains(run_dir: str | Path, *, heldout: Path | None, sketches: Path | None,
                 domain: str | None = None, domain_configs: dict | None = None,
                 exclude: list[Path] | None = None, options=None) -> list[DomainPlan]:
    """Split the checkpoints under ``run_dir`` by domain and give each its data.

    Args:
        run_dir: a domain root (``checkpoints/``) or one domain's folder.
        heldout: the held-out pairs: a root with one subfolder per domain, or one
            domain's folder.
        sketches: the sketch set (one or more domains).
        domain: ``--domain`` / ``[run] domain``: the domain of a one-domain folder, the one
            domain to evaluate of a root, or ``"all"`` to pool (explicitly).
        domain_configs: ``[domains.<d>]`` tables (:class:`evalkit.core.config.DomainConfig`).
        exclude: folders never searched for checkpoints (evalkit's own output).
        options: the run's options (model formats: contract, netG...), for discovery.

    Raises :class:`DomainError` when the domains are ambiguous.
    """
    run_dir = Path(run_dir)
    domain_configs = domain_configs or {}
    from evalkit.inputs import sources
    refs = sources.discover(run_dir, exclude=exclude, options=options)
    s_domains = sketch_domains(sketches)
    h_domains = heldout_domains(heldout)
    known = set(domain_configs) | set(s_domains) | set(h_domains)

    if domain == POOLED:
        plan = DomainPlan(POOLED, run_dir, refs, heldout, sketches)
        plan.notes.append("--domain all: every domain's sketches are pooled into ONE "
                          "evaluation (sketches/all); its numbers mix domains")
        if heldout is not None:
            plan.heldout_domain = pooled_heldout_domain(run_dir, heldout, known, h_domains,
                                                        domain_configs)
            if plan.heldout_domain != POOLED:
                label = f"heldout/{plan.heldout_domain}" if plan.heldout_domain else "heldout"
                plan.notes.append(f"held-out pairs {heldout} are one folder, not pooled: "
                                  f"named {label}")
        return [plan]

    groups = _group_by_domain_folder(run_dir, refs, domain_configs, known)
    if groups:
        plans = []
        outside = [r for r in refs if not any(r in g for g in groups.values())]
        for d in sorted(groups):
            if domain is not None and d != domain:
                continue
            plans.append(_plan_for(d, run_dir, groups[d], heldout, sketches, h_domains,
                                   domain_configs, qualify=False, single=False))
        if domain is not None and not plans:
            raise DomainError(f"--domain {domain}: {run_dir} has no checkpoints of domain "
                              f"'{domain}' (domains found: {', '.join(sorted(groups))})")
        if outside and plans:
            folders = sorted({PurePosixPath(r.name).parts[0] for r in outside})
            plans[0].notes.append(
                f"{len(outside)} checkpoint(s) under {', '.join(f + '/' for f in folders)} "
                "are not in a known domain folder and were NOT evaluated: add "
                "[domains.<name>] to evalkit.toml, a held-out folder <heldout>/<name>/ or "
                "sketches of that domain")
        return plans

    # One domain's folder (or a run without domains).
    d = domain
    if d is None and run_dir.resolve().name in known:
        d = run_dir.resolve().name
    if d is None:
        data_domains = sorted(set(s_domains) | set(h_domains))
        if len(data_domains) == 1:
            d = data_domains[0]
        elif len(data_domains) > 1:
            where = sketches if s_domains else heldout
            raise DomainError(
                f"{where} holds {len(data_domains)} domains ({', '.join(data_domains)}) and "
                f"the domain of {run_dir} is unknown: pass --domain NAME (e.g. --domain "
                f"{data_domains[0]}), set [run] domain in evalkit.toml, or run on the root "
                "folder whose subfolders are the domains; --domain all pools every domain "
                "into one evaluation (numbers that mix domains)")
    return [_plan_for(d or "", run_dir, refs, heldout, sketches, h_domains, domain_configs,
                      qualify=True, single=True)]


def pooled_heldout_domain(run_dir: Path, heldout: Path, known: set[str],
                          h_domains: list[str], domain_configs: dict) -> str:
    """The domain a pooled run's held-out folder is named by: ``all`` only when it is a
    root split by domain; else the domain whose ``[domains.<d>] heldout`` it is, else its
    folder's name or the run folder's name when that is a known domain, else ``""``
    (unknown: named plain ``heldout``, never ``heldout/all``)."""
    if h_domains:
        return POOLED
    h = Path(heldout).resolve()
    for name, dc in domain_configs.items():
        if dc.heldout is not None and Path(dc.heldout).resolve() == h:
            return name
    for candidate in (h.name, Path(run_dir).resolve().name):
        if candidate in known:
            return candidate
    return ""


def _group_by_domain_folder(run_dir: Path, refs: list[CheckpointRef],
                            domain_configs: dict, known: set[str]
                            ) -> dict[str, list[CheckpointRef]]:
    """Root layout: domain -> its checkpoints (empty when ``run_dir`` is no domain root)."""
    groups: dict[str, list[CheckpointRef]] = {}
    resolved = run_dir.resolve()
    for ref in refs:
        d = None
        for name, dc in domain_configs.items():  # [domains.<d>] run = ... wins
            if dc.run is not None and ref.prefix.resolve().is_relative_to(dc.run) \
                    and resolved != dc.run.resolve():
                d = name
                break
        parts = PurePosixPath(ref.name).parts
        if d is None and len(parts) > 1 and parts[0] in known:
            d = parts[0]
        if d is not None:
            groups.setdefault(d, []).append(ref)
    return groups


def _plan_for(d: str, run_dir: Path, refs: list[CheckpointRef], heldout: Path | None,
              sketches: Path | None, h_domains: list[str], domain_configs: dict,
              qualify: bool, single: bool) -> DomainPlan:
    dc = domain_configs.get(d)
    if qualify and d:
        refs = [_named(r, f"{d}/{r.name}") for r in refs]
    plan = DomainPlan(d, run_dir, refs)
    plan.sketches = (dc.sketches if dc is not None and dc.sketches is not None else sketches)
    if dc is not None and dc.heldout is not None:
        plan.heldout = dc.heldout
    elif heldout is not None and d and d in h_domains:
        plan.heldout = Path(heldout) / d
    elif heldout is not None and (single or not h_domains):
        if h_domains and single and d not in h_domains:
            plan.notes.append(f"held-out root {heldout} has no folder for domain '{d}' "
                              f"(it has {', '.join(h_domains)}): no held-out track for {d}")
        elif single:
            plan.heldout = Path(heldout)
        else:
            plan.notes.append(f"held-out folder {heldout} is not split by domain (no "
                              f"{heldout}/{d}/): no held-out track for domain '{d}', so as "
                              "not to mix domains")
    elif heldout is not None:
        plan.notes.append(f"no held-out pairs for domain '{d}' ({heldout}/{d}/ does not "
                          "exist): only its sketches are evaluated")
    return plan
