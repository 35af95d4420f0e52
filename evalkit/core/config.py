"""``evalkit.toml``: per-run settings, found next to the checkpoints or above them.

Lookup order for ``evalkit run RUN_DIR``: ``--config FILE``; else the first
``evalkit.toml`` in RUN_DIR or one of its parent folders; else ``./evalkit.toml``.
Relative paths in the file are relative to the file's folder. Shape::

    [run]
    domain = "car"                 # selects human_sketches/<domain> in a multi-domain set
    heldout = "data/car/heldout"   # AB images, or a folder with A/ and B/
    sketches = "human_sketches"    # hand-drawn set (optional)
    image_size = 256               # the size the model is served at
    batch_size = 8
    feature_extractor = "inception.pt"   # optional TorchScript FID/KID features

    [domains.car]                  # one table per domain (optional; see evalkit.execute.domains)
    run = "checkpoints/car"        # its checkpoints (default: RUN_DIR/<domain>/)
    heldout = "data/car/heldout"   # its held-out pairs (default: <heldout>/<domain>/)
    sketches = "sketches/car"      # its sketch set (default: [run] sketches)

    [ranking] ...   # see evalkit.decide.ranking.rank
    [gate] ...      # see evalkit.decide.gate

Other sections are kept in ``Config.raw`` for the modules that own them.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_NAME = "evalkit.toml"
RUN_KEYS = {"domain": str, "heldout": str, "sketches": str, "image_size": int,
            "batch_size": int, "feature_extractor": str, "limit": int, "race": bool}


DOMAIN_KEYS = ("run", "heldout", "sketches")
#: The smallest image size (px) a model is served at.
MIN_IMAGE_SIZE = 16


def image_size_problem(value: int) -> str | None:
    """Why ``value`` (px) cannot be the size models are served at, or None when it can: it
    must be a multiple of 4 (the generators halve it twice and double it back) and at
    least :data:`MIN_IMAGE_SIZE`."""
    if value < MIN_IMAGE_SIZE or value % 4:
        return (f"image size {value} px is not usable: it must be a multiple of 4 and at least "
                f"{MIN_IMAGE_SIZE} (e.g. 256, the seed model's size)")
    return None


class ConfigError(ValueError):
    """An invalid evalkit.toml; the message names the file, the key and the line."""


@dataclass
class DomainConfig:
    """A ``[domains.<name>]`` table: where one domain's checkpoints and data are."""

    name: str
    run: Path | None = None
    heldout: Path | None = None
    sketches: Path | None = None


@dataclass
class Config:
    """Parsed evalkit.toml (all fields optional)."""

    path: Path | None = None
    domain: str | None = None
    heldout: Path | None = None
    sketches: Path | None = None
    image_size: int | None = None
    batch_size: int | None = None
    feature_extractor: Path | None = None
    limit: int | None = None
    race: bool | None = None
    domains: dict[str, DomainConfig] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    def line_of(self, key: str, section: str | None = None) -> int | None:
        """1-based line where ``key = ...`` appears (inside ``[section]`` if given)."""
        return find_line(self.text, key, section)


def find_line(text: str, key: str, section: str | None = None) -> int | None:
    """Line number of ``key =`` in TOML text, optionally after a ``[section]`` header."""
    in_section = section is None
    for i, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if s.startswith("["):
            name = s.strip("[] ")
            in_section = section is None or name == section or name.startswith(section + ".")
            continue
        if in_section and s.split("=", 1)[0].strip() == key:
            return i
    return None


def find_config(run_dir: Path) -> Path | None:
    """The evalkit.toml that applies to ``run_dir`` (see module docstring)."""
    for folder in [run_dir.resolve(), *run_dir.resolve().parents]:
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    cwd = Path.cwd() / CONFIG_NAME
    return cwd if cwd.is_file() else None


def load_config(path: str | Path | None) -> Config:
    """Parse and validate an evalkit.toml; ``None`` gives the defaults."""
    if path is None:
        return Config()
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte 0x{data[exc.start]:02x} at "
                          f"offset {exc.start}); TOML configs must be UTF-8: re-save it as "
                          "UTF-8, or pass --config with the right file") from exc
    if "\x00" in text:
        raise ConfigError(f"{path}: a binary file, not a TOML config (it contains NUL bytes); "
                          "pass --config with the evalkit.toml")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    cfg = Config(path=path, raw=raw, text=text)
    run = raw.get("run", {})
    if not isinstance(run, dict):
        raise ConfigError(f"{path}: [run] must be a table")
    for key, value in run.items():
        line = find_line(text, key, "run")
        where = f"{path}:{line}" if line else str(path)
        if key not in RUN_KEYS:
            raise ConfigError(f"{where}: unknown key '{key}' in [run]; known keys: "
                              f"{', '.join(sorted(RUN_KEYS))}")
        if not isinstance(value, RUN_KEYS[key]) or (isinstance(value, bool)
                                                     and RUN_KEYS[key] is not bool):
            raise ConfigError(f"{where}: '{key}' must be a {RUN_KEYS[key].__name__}, "
                              f"got {value!r}")
        if key == "image_size" and (problem := image_size_problem(value)):
            raise ConfigError(f"{where}: {problem}; fix 'image_size' in [run]")
        if key in ("heldout", "sketches", "feature_extractor"):
            value = (path.parent / value).resolve()
        setattr(cfg, key, value)
    cfg.domains = _domain_tables(path, text, raw.get("domains", {}))
    return cfg


def _domain_tables(path: Path, text: str, tables: Any) -> dict[str, DomainConfig]:
    """Validate ``[domains.<name>]`` tables; paths are relative to the config file."""
    if not isinstance(tables, dict):
        raise ConfigError(f"{path}: [domains] must hold tables like [domains.car]")
    out = {}
    for name, table in tables.items():
        section = f"domains.{name}"
        line = _header_line(text, section)
        where = f"{path}:{line}" if line else str(path)
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [domains.{name}] must be a table with keys "
                              f"{', '.join(DOMAIN_KEYS)}")
        dc = DomainConfig(name)
        for key, value in table.items():
            kl = find_line(text, key, section)
            kwhere = f"{path}:{kl}" if kl else where
            if key not in DOMAIN_KEYS:
                raise ConfigError(f"{kwhere}: unknown key '{key}' in [domains.{name}]; "
                                  f"known keys: {', '.join(DOMAIN_KEYS)}")
            if not isinstance(value, str):
                raise ConfigError(f"{kwhere}: '{key}' must be a path string, got {value!r}")
            setattr(dc, key, (path.parent / value).resolve())
        out[name] = dc
    return out


def _header_line(text: str, section: str) -> int | None:
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip().replace(" ", "") == f"[{section}]":
            return i
    return None
