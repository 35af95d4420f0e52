"""Pretrained weight files the perceptual metrics need: where evalkit looks, how it checks them.

evalkit is offline-first. It never lets a library download weights behind its back and never
substitutes other weights: every file is looked up locally, its sha256 checked, and a missing
or wrong file makes the metric *skipped* with a one-line reason that names the file and the
command that fixes it (:class:`WeightsMissing`).

Files (:data:`REGISTRY`):

* ``weights-inception-2015-12-05-6726825d.pth`` -- Inception-v3 with the TensorFlow
  "2015-12-05" weights that the original FID code (Heusel et al. 2017) used, ported to PyTorch by
  torch-fidelity; torchmetrics' FID/KID load it too. Used by ``fid`` and ``kid``.
* ``alexnet-owt-7be5be79.pth`` -- torchvision's ImageNet AlexNet, the LPIPS backbone
  (Zhang et al. 2018). Used by ``lpips``.
* LPIPS v0.1 linear layers (``lpips_models/alex.pth``) ship inside the torchmetrics package;
  :func:`status` lists them as *bundled* (nothing to fetch).

Lookup order for a file named ``NAME`` (first hit wins):

1. ``$EVALKIT_WEIGHTS_DIR/NAME`` when the variable is set;
2. the torch hub cache, ``$TORCH_HOME/hub/checkpoints/NAME`` (``TORCH_HOME`` defaults to
   ``$XDG_CACHE_HOME/torch``, i.e. ``~/.cache/torch``) -- where torchvision and torch-fidelity
   put the same files, so a machine that already has them needs nothing.

Hashes. torch hub names embed the first 8 hex digits of the file's sha256
(``name-<sha256 prefix>.pth``; torch.hub's own ``check_hash`` convention). Where a public source
gives the full sha256 evalkit checks all of it, otherwise it checks the embedded prefix exactly
like ``torch.hub.download_url_to_file(hash_prefix=...)`` does, and says so (``hash_check``):

* Inception: full sha256 ``6726825d0af5...29b2`` (95,628,359 bytes), as recorded independently by
  several public projects that pin the torch-fidelity v0.2.0 release file; its first 8 digits
  agree with the name.
* AlexNet: no public source with the full digest was found, so the check is the torch-hub prefix
  ``7be5be79`` (32 bits: catches truncated and wrong files, not a deliberate forgery).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.core.hashing import file_sha256

ENV_DIR = "EVALKIT_WEIGHTS_DIR"
FIX_COMMAND = "evalkit weights fetch"
IMPORT_COMMAND = "evalkit weights import FILE"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class WeightFile:
    """One pretrained weight file a metric needs.

    Attributes:
        key: short id (``inception``, ``alexnet``).
        name: file name, as in the torch hub cache.
        url: where ``evalkit weights fetch`` downloads it from.
        sha256_prefix: the hash prefix embedded in ``name`` (torch hub convention).
        sha256: the full sha256 when a public source gives it, else ``None`` (prefix check).
        size: expected size in bytes when known.
        used_by: metrics that need it.
        description: what it is.
    """

    key: str
    name: str
    url: str
    sha256_prefix: str
    used_by: tuple[str, ...]
    description: str
    sha256: str | None = None
    size: int | None = None

    @property
    def hash_check(self) -> str:
        """``"sha256"`` (full digest) or ``"sha256-prefix"`` (torch hub style)."""
        return "sha256" if self.sha256 else "sha256-prefix"

    def expected_hash(self) -> str:
        """The full digest, or the prefix followed by ``...``."""
        return self.sha256 or f"{self.sha256_prefix}..."

    def matches(self, digest: str) -> bool:
        """Does a file with this sha256 hex digest qualify as this weight file?"""
        digest = digest.lower()
        if self.sha256:
            return digest == self.sha256
        return digest.startswith(self.sha256_prefix)


INCEPTION = WeightFile(
    key="inception",
    name="weights-inception-2015-12-05-6726825d.pth",
    url="https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
        "weights-inception-2015-12-05-6726825d.pth",
    sha256_prefix="6726825d",
    sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
    size=95_628_359,
    used_by=("fid", "kid"),
    description="Inception-v3, FID-standard TF 2015-12-05 weights (torch-fidelity port)",
)
ALEXNET = WeightFile(
    key="alexnet",
    name="alexnet-owt-7be5be79.pth",
    url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    sha256_prefix="7be5be79",
    used_by=("lpips",),
    description="AlexNet ImageNet weights (torchvision), the LPIPS backbone",
)
#: key -> weight file
REGISTRY: dict[str, WeightFile] = {w.key: w for w in (INCEPTION, ALEXNET)}


class WeightsMissing(RuntimeError):
    """A weight file is missing (or fails its hash check) and evalkit will not substitute it.

    ``str(exc)`` is one line naming the file, where evalkit looked and the fixing command;
    :meth:`skip_reason` prefixes it with the metrics it skips.
    """

    def __init__(self, weight: WeightFile, looked_in: list[Path], problem: str | None = None):
        self.weight = weight
        self.file_name = weight.name
        self.looked_in = list(looked_in)
        self.problem = problem
        self.fix_command = FIX_COMMAND
        self.import_command = IMPORT_COMMAND
        where = ", ".join(str(p) for p in self.looked_in) or "nowhere"
        hint = "" if os.environ.get(ENV_DIR) else f"; set {ENV_DIR} to add a folder"
        what = problem or f"not found (looked in {where}{hint})"
        super().__init__(
            f"weights file {weight.name} {what}; run '{FIX_COMMAND}' on a connected machine "
            f"or '{IMPORT_COMMAND}' with a copy fetched elsewhere")

    def skip_reason(self, metrics: str) -> str:
        """``"<metrics> skipped: weights file ... not found (...); run ..."``."""
        return f"{metrics} skipped: {self}"


class BundledMissing(WeightsMissing):
    """A file that ships inside a Python package (not fetched by evalkit) is missing."""

    def __init__(self, file_name: str, package: str):
        RuntimeError.__init__(self, f"weights file {file_name} not found: it ships inside the "
                                    f"{package} package; pip install {package}")
        self.weight, self.file_name, self.looked_in, self.problem = None, file_name, [], None
        self.fix_command = f"pip install {package}"
        self.import_command = None


def torch_hub_checkpoints() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` as torch computes it (without importing torch)."""
    home = os.environ.get("TORCH_HOME")
    if not home:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        home = os.path.join(xdg, "torch")
    return Path(os.path.expanduser(home)) / "hub" / "checkpoints"


def search_dirs() -> list[Path]:
    """Folders evalkit looks in, in order: ``$EVALKIT_WEIGHTS_DIR``, then the torch hub cache."""
    dirs = []
    env = os.environ.get(ENV_DIR)
    if env:
        dirs.append(Path(os.path.expanduser(env)))
    dirs.append(torch_hub_checkpoints())
    return dirs


def default_dest() -> Path:
    """Where fetch/import put files: ``$EVALKIT_WEIGHTS_DIR`` if set, else the torch hub cache."""
    return search_dirs()[0]


# (path, size, mtime_ns) -> sha256: hashing 100-250 MB once per process is enough.
_digest_cache: dict[tuple[str, int, int], str] = {}


def cached_sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _digest_cache:
        _digest_cache[key] = file_sha256(path)
    return _digest_cache[key]


def _get(weight: str | WeightFile) -> WeightFile:
    if isinstance(weight, WeightFile):
        return weight
    try:
        return REGISTRY[weight]
    except KeyError:
        raise KeyError(f"unknown weight file '{weight}'; known: {', '.join(REGISTRY)}") from None


def locate(weight: str | WeightFile) -> Path | None:
    """First existing file for ``weight`` in :func:`search_dirs` (unchecked), or None."""
    w = _get(weight)
    for d in search_dirs():
        p = d / w.name
        if p.is_file():
            return p
    return None


def resolve(weight: str | WeightFile) -> Path:
    """The local, hash-checked path of ``weight``.

    Raises:
        WeightsMissing: not found in any search folder, or the first file found fails its
            hash check (evalkit never falls back to another copy or other weights).
    """
    w = _get(weight)
    dirs = search_dirs()
    path = locate(w)
    if path is None:
        raise WeightsMissing(w, dirs)
    digest = cached_sha256(path)
    if not w.matches(digest):
        raise WeightsMissing(w, dirs, problem=f"at {path} has sha256 {digest}, expected "
                                              f"{w.expected_hash()} (corrupt or other weights)")
    return path


@dataclass
class WeightStatus:
    """One row of ``evalkit weights status``."""

    key: str
    name: str
    used_by: tuple[str, ...]
    state: str  # "found", "bundled", "missing" (not installed), "bad-hash", "unreadable"
    path: Path | None
    looked_in: list[Path]
    size: int | None
    sha256: str | None  # of the file found (None when missing)
    expected: str  # full digest or "prefix..."
    hash_check: str
    description: str = ""
    problem: str | None = None  # why a present file is unusable (bad-hash, unreadable)
    extra: dict = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        """Present and passing its check (``found`` or ``bundled``)."""
        return self.state in ("found", "bundled")

    @property
    def unusable(self) -> bool:
        """Present but unusable: fails its hash check or cannot be read (not merely
        missing)."""
        return self.state in UNUSABLE

    def fix(self) -> str:
        """The command(s) that make this file usable ('' when it is)."""
        if self.usable:
            return ""
        if self.key not in REGISTRY:  # shipped inside a package: reinstall that package
            return "reinstall torchmetrics (pip install --force-reinstall torchmetrics)"
        fetch = f"'{FIX_COMMAND} {self.key}' on a connected machine or '{IMPORT_COMMAND}' " \
                "with a copy fetched elsewhere"
        if self.state == "unreadable":
            return f"make {self.path} readable (chmod a+r), or delete it and run {fetch}"
        if self.state == "bad-hash":
            return f"delete {self.path} and run {fetch}"
        return f"run {fetch}"

    def as_dict(self) -> dict:
        return {"key": self.key, "name": self.name, "used_by": list(self.used_by),
                "state": self.state, "path": str(self.path) if self.path else None,
                "looked_in": [str(p) for p in self.looked_in], "size": self.size,
                "sha256": self.sha256, "expected": self.expected, "hash_check": self.hash_check,
                "description": self.description, "problem": self.problem, "fix": self.fix()}


#: states of a file that is present but cannot be used (``evalkit weights status`` exit 1)
UNUSABLE = ("bad-hash", "unreadable")


def bundled_lpips_layers(net: str = "alex") -> Path | None:
    """Path of the LPIPS v0.1 linear layers shipped in torchmetrics (without importing it)."""
    spec = importlib.util.find_spec("torchmetrics")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    p = root / "functional" / "image" / "lpips_models" / f"{net}.pth"
    return p if p.is_file() else None


def status() -> list[WeightStatus]:
    """Every file a metric needs: where it is (or where evalkit looked), size, sha256, state.

    States: ``found`` (hash ok), ``bundled`` (inside a package), ``missing`` (not installed),
    ``bad-hash`` (present, wrong sha256: corrupt, truncated or other weights) and
    ``unreadable`` (present, cannot be read); the last two carry ``problem``."""
    rows = []
    dirs = search_dirs()
    for w in REGISTRY.values():
        path = locate(w)
        if path is None:
            rows.append(WeightStatus(w.key, w.name, w.used_by, "missing", None, dirs, w.size, None,
                                     w.expected_hash(), w.hash_check, w.description))
            continue
        size = path.stat().st_size
        try:
            digest = cached_sha256(path)
        except OSError as exc:
            rows.append(WeightStatus(w.key, w.name, w.used_by, "unreadable", path, dirs, size,
                                     None, w.expected_hash(), w.hash_check, w.description,
                                     problem=f"cannot be read: {exc.strerror or exc}"))
            continue
        ok = w.matches(digest)
        rows.append(WeightStatus(
            w.key, w.name, w.used_by, "found" if ok else "bad-hash", path, dirs, size, digest,
            w.expected_hash(), w.hash_check, w.description,
            problem=None if ok else f"has sha256 {digest}, expected {w.expected_hash()} "
                                    "(corrupt, truncated or other weights)"))
    lin = bundled_lpips_layers()
    state, digest, problem = ("bundled" if lin else "missing"), None, None
    if lin:
        try:
            digest = file_sha256(lin)
        except OSError as exc:
            state, problem = "unreadable", f"cannot be read: {exc.strerror or exc}"
    rows.append(WeightStatus(
        "lpips-v0.1-alex", "lpips_models/alex.pth", ("lpips",), state, lin,
        [lin.parent] if lin else [], lin.stat().st_size if lin else None, digest,
        "(shipped inside torchmetrics)", "package", "LPIPS v0.1 linear layers (torchmetrics)",
        problem=problem))
    return rows


def _atomic_place(tmp: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, dest)


def fetch(keys: list[str] | None = None, dest: Path | None = None, force: bool = False,
          progress: bool = True, log: Callable[[str], None] = print) -> list[Path]:
    """Download weight files (all by default) into ``dest`` and check their hashes.

    Files already present and valid in a search folder are left alone unless ``force``.
    Downloads stream to a temporary file beside the destination, are hashed as they arrive,
    and are moved into place only when the hash matches.

    Raises:
        OSError: network or disk problems (the message says which file).
        ValueError: a downloaded file failed its hash check (it is deleted).
    """
    import urllib.request

    from tqdm import tqdm

    dest = Path(dest) if dest is not None else default_dest()
    placed = []
    for key in keys or list(REGISTRY):
        w = _get(key)
        if not force:
            try:
                have = resolve(w)
            except WeightsMissing:
                pass
            else:
                log(f"{w.name}: already present at {have}")
                placed.append(have)
                continue
        dest.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{w.name}.", suffix=".part", dir=dest)
        tmp = Path(tmp_name)
        h = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out:
                try:
                    req = urllib.request.Request(w.url, headers={"User-Agent": "evalkit"})
                    with urllib.request.urlopen(req, timeout=60) as resp:
                        total = int(resp.headers.get("Content-Length") or 0) or w.size
                        with tqdm(total=total, unit="B", unit_scale=True, desc=w.name,
                                  disable=not progress) as bar:
                            while chunk := resp.read(_CHUNK):
                                out.write(chunk)
                                h.update(chunk)
                                bar.update(len(chunk))
                except OSError as exc:
                    raise OSError(f"cannot download {w.name} from {w.url}: {exc}") from exc
            digest = h.hexdigest()
            if not w.matches(digest):
                raise ValueError(f"downloaded {w.name} has sha256 {digest}, expected "
                                 f"{w.expected_hash()}; not installed")
            target = dest / w.name
            _atomic_place(tmp, target)
            log(f"{w.name}: saved to {target} (sha256 {digest})")
            placed.append(target)
        finally:
            tmp.unlink(missing_ok=True)
    return placed


def identify(path: str | Path) -> tuple[WeightFile | None, str]:
    """Which registry entry a file is, judged by its sha256 (its name does not matter)."""
    digest = file_sha256(path)
    for w in REGISTRY.values():
        if w.matches(digest):
            return w, digest
    return None, digest


def import_file(src: str | Path, dest: Path | None = None) -> Path:
    """Check a weight file fetched elsewhere and copy it into place under its registry name.

    The file is recognised by its sha256 (full digest, or torch-hub prefix where no full digest
    is known), so a renamed download is accepted and a wrong or truncated one is refused.

    Raises:
        FileNotFoundError: ``src`` does not exist.
        ValueError: its hash matches no weight file evalkit needs.
    """
    src = Path(src)
    if not src.is_file():
        raise FileNotFoundError(f"{src} does not exist")
    w, digest = identify(src)
    if w is None:
        known = "; ".join(f"{x.name} ({x.expected_hash()})" for x in REGISTRY.values())
        raise ValueError(f"{src} (sha256 {digest}) is none of the weight files evalkit needs: "
                         f"{known}")
    dest = Path(dest) if dest is not None else default_dest()
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / w.name
    if target.exists() and target.resolve() == src.resolve():
        return target
    fd, tmp_name = tempfile.mkstemp(prefix=f".{w.name}.", suffix=".part", dir=dest)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        shutil.copyfile(src, tmp)
        if not w.matches(file_sha256(tmp)):  # the copy itself went wrong
            raise OSError(f"copy of {src} to {dest} does not match its source")
        _atomic_place(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
