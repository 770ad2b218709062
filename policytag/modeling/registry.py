"""The model registry: numbered model versions and the production pointer.

Layout under ``root`` (``paths.models_dir()``, i.e. ``$POLICYTAG_HOME/models``)::

    registry.json            versions (parent, data hash, corrections, metrics, time, status)
                             and the "production" pointer with its history
    versions/v0001-20261123T1530/   complete model directories (read-only by convention)
    tmp/                     models being trained (moved into versions/ only when complete)
    .lock                    a file lock serializing registry changes between processes

Every change is a read-modify-write of ``registry.json`` under the lock, written with
:func:`~policytag.clause.atomic_write_text` (temp file + ``os.replace``), so a reader sees
the old or the new registry, never half of one, and a crash at any point leaves the
production model usable. A model directory becomes a version by one ``os.replace`` of a
complete directory into ``versions/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from policytag import paths
from policytag.fileio import atomic_write_text
from policytag.errors import ModelNotFoundError, PolicytagError

REGISTRY_FILE = "registry.json"
META_FILE = "policytag.json"  # the model directory's metadata (training.modeling.META_FILE)
STATUSES = ("production", "candidate", "retired")
_VERSION_RE = re.compile(r"^v(\d{4,})-\d{8}T\d{4}$")


# --------------------------------------------------------------------------- locking

@contextmanager
def file_lock(path: str | os.PathLike, *, blocking: bool = True, what: str = "") -> Iterator[None]:
    """An exclusive inter-process lock on ``path`` (POSIX ``flock``; a no-op where unavailable).

    With ``blocking=False`` a lock held elsewhere raises :class:`PolicytagError` at once.
    The lock dies with its process, so a crash never leaves a stale lock behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    fh = open(path, "a+")
    try:
        flags = fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB)
        try:
            fcntl.flock(fh.fileno(), flags)
        except BlockingIOError:
            raise PolicytagError(what or f"{path} is locked by another process; try again when it has finished") from None
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    finally:
        fh.close()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")


class ModelRegistry:
    """Versioned model directories with a production pointer (see the module docstring)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else paths.models_dir()
        self.root = self.root.resolve()

    def __repr__(self) -> str:
        return f"ModelRegistry({str(self.root)!r})"

    # ---- files
    @property
    def versions_dir(self) -> Path:
        return self.root / "versions"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    @property
    def registry_file(self) -> Path:
        return self.root / REGISTRY_FILE

    def _lock(self):
        return file_lock(self.root / ".lock")

    def _load(self) -> dict:
        f = self.registry_file
        if not f.exists():
            return {"format": 1, "production": None, "production_history": [], "versions": {}}
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise PolicytagError(f"{f} is damaged ({e.msg}); restore it from a backup or move the "
                                 f"models directory away (POLICYTAG_HOME={paths.home()})") from None
        data.setdefault("production", None)
        data.setdefault("production_history", [])
        data.setdefault("versions", {})
        return data

    def _save(self, data: dict) -> None:
        atomic_write_text(self.registry_file, json.dumps(data, ensure_ascii=False, indent=2) + "\n")

    # ---- reading
    def versions(self) -> list[dict]:
        """All registered versions, oldest first, each a dict with ``version``, ``path``,
        ``parent``, ``data_hash``, ``corrections``, ``metrics``, ``created_at``, ``status``..."""
        data = self._load()
        out = []
        for vid, entry in data["versions"].items():
            d = {"version": vid, **entry, "path": str(self.versions_dir / vid)}
            d["status"] = "production" if vid == data["production"] else entry.get("status", "candidate")
            out.append(d)
        return sorted(out, key=lambda d: _number(d["version"]))

    def production_version(self) -> str | None:
        return self._load()["production"]

    def production(self) -> Path | None:
        """The production model directory, or None when no version has been promoted."""
        vid = self.production_version()
        if vid is None:
            return None
        p = self.versions_dir / vid
        if not (p / META_FILE).exists():
            raise ModelNotFoundError(
                f"the production model {vid} is missing from {p}; promote another version with "
                "`policytag models promote VERSION` or run `policytag retrain`")
        return p

    def resolve(self, version: str) -> str:
        """A version id from an id, a unique prefix (``v0003``), ``production`` or ``latest``."""
        data = self._load()
        ids = sorted(data["versions"], key=_number)
        if version == "production":
            if data["production"] is None:
                raise ModelNotFoundError("no production model yet; run `policytag retrain`")
            return data["production"]
        if version == "latest":
            if not ids:
                raise ModelNotFoundError("the registry has no versions yet; run `policytag retrain`")
            return ids[-1]
        if version in data["versions"]:
            return version
        hits = [v for v in ids if v.startswith(version)]
        if len(hits) == 1:
            return hits[0]
        known = ", ".join(ids) or "none"
        if hits:
            raise PolicytagError(f"version {version!r} is ambiguous: {', '.join(hits)}")
        raise ModelNotFoundError(f"no model version {version!r} in {self.root}; known versions: {known}")

    def get(self, version: str) -> dict:
        vid = self.resolve(version)
        return next(d for d in self.versions() if d["version"] == vid)

    def path(self, version: str) -> Path:
        return self.versions_dir / self.resolve(version)

    def find_by_model_version(self, model_version: str | None) -> Path | None:
        """The directory of a registered version whose id equals a prediction's ``model_version``."""
        if not model_version:
            return None
        data = self._load()
        if model_version in data["versions"]:
            p = self.versions_dir / model_version
            return p if p.exists() else None
        return None

    # ---- writing
    def new_version_dir(self) -> Path:
        """A fresh empty directory on the registry's file system to train a model into.

        Pass it (once complete) to :meth:`register`, which moves it into ``versions/``;
        leftovers of crashed runs are removed by :meth:`cleanup`.
        """
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=self.tmp_dir, prefix=f"train-{os.getpid()}-"))

    def cleanup(self) -> list[Path]:
        """Remove training directories left behind by processes that no longer run."""
        removed: list[Path] = []
        if not self.tmp_dir.exists():
            return removed
        for d in self.tmp_dir.iterdir():
            m = re.match(r"^(?:train|stage)-(\d+)-", d.name)
            if m and not _pid_alive(int(m.group(1))):
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d)
        return removed

    def _next_id(self, data: dict, when: datetime) -> str:
        nums = [_number(v) for v in data["versions"]]
        if self.versions_dir.exists():  # also count directories of a crash between move and save
            nums += [_number(p.name) for p in self.versions_dir.iterdir() if _VERSION_RE.match(p.name)]
        n = max(nums, default=0) + 1
        return f"v{n:04d}-{when.strftime('%Y%m%dT%H%M')}"

    def register(self, model_dir: str | os.PathLike, parent: str | None = None, corrections: int = 0, *,
                 metrics: dict | None = None, data_hash: str | None = None, status: str = "candidate",
                 copy: bool | None = None, **extra: Any) -> str:
        """Add a complete model directory as a new version; returns the version id.

        The directory is moved into ``versions/<id>/`` (copied first, to a temporary name on
        the same file system, when it lies elsewhere or ``copy=True``). ``data_hash`` and
        ``metrics`` default to the values in the model's ``policytag.json``, whose
        ``version`` is set to the new id so predictions name the registered version.
        ``status`` is ``candidate`` (default) or ``production`` (registers and promotes).
        Extra keyword arguments are stored with the version (e.g. ``overrides=3``).
        """
        src = Path(model_dir).resolve()
        if not (src / META_FILE).exists():
            raise ModelNotFoundError(f"{src} is not a complete model directory (no {META_FILE})")
        if status not in ("candidate", "production"):
            raise PolicytagError(f"status must be 'candidate' or 'production', got {status!r}")
        meta = json.loads((src / META_FILE).read_text(encoding="utf-8"))
        inside = self.tmp_dir.resolve() in src.parents
        if copy or (copy is None and not inside):
            stage = Path(tempfile.mkdtemp(dir=_mk(self.tmp_dir), prefix=f"stage-{os.getpid()}-"))
            shutil.copytree(src, stage / "m")
            work = stage / "m"
        else:
            stage, work = None, src
        try:
            with self._lock():
                data = self._load()
                if parent is not None and parent not in data["versions"]:
                    parent = self.resolve(parent)
                when = _now()
                vid = self._next_id(data, when)
                meta["version"] = vid
                meta["registered_at"] = _iso(when)
                atomic_write_text(work / META_FILE, json.dumps(meta, ensure_ascii=False, indent=2))
                _rerender_card(work, meta)
                self.versions_dir.mkdir(parents=True, exist_ok=True)
                os.replace(work, self.versions_dir / vid)
                entry = {
                    "parent": parent,
                    "data_hash": data_hash or meta.get("data_hash"),
                    "corrections": int(corrections),
                    "metrics": metrics if metrics is not None else meta.get("metrics", {}),
                    "created_at": _iso(when),
                    "status": "candidate",
                    "backend": meta.get("backend"),
                    "base_model": meta.get("base_model"),
                    **extra,
                }
                data["versions"][vid] = entry
                if status == "production":
                    self._set_production(data, vid)
                self._save(data)
        finally:
            if stage is not None:
                shutil.rmtree(stage, ignore_errors=True)
        return vid

    def _set_production(self, data: dict, vid: str) -> None:
        old = data["production"]
        if old == vid:
            return
        if old is not None and old in data["versions"]:
            data["versions"][old]["status"] = "retired"
        data["versions"][vid]["status"] = "production"
        data["versions"][vid]["promoted_at"] = _iso(_now())
        data["production"] = vid
        data["production_history"].append(vid)

    def promote(self, version: str) -> str:
        """Make ``version`` the production model (atomic); the previous one becomes ``retired``."""
        with self._lock():
            data = self._load()
            vid = self._resolve_in(data, version)
            if not (self.versions_dir / vid / META_FILE).exists():
                raise ModelNotFoundError(f"version {vid} has no model directory at {self.versions_dir / vid}")
            self._set_production(data, vid)
            self._save(data)
        from policytag.modeling.fast_runtime import ensure_fast_runtime

        ensure_fast_runtime(self.versions_dir / vid)  # an older version without onnx/ gets it now
        return vid

    def rollback(self) -> str:
        """Put the previous production version back into production; returns its id.

        The version rolled back from becomes ``retired``. Repeated rollbacks walk further back.
        """
        with self._lock():
            data = self._load()
            hist = [v for v in data["production_history"] if v in data["versions"]]
            cur = data["production"]
            if cur is None:
                raise PolicytagError("there is no production model to roll back from")
            # drop the current one (and repeats of it) from the end of the history
            while hist and hist[-1] == cur:
                hist.pop()
            while hist and not (self.versions_dir / hist[-1] / META_FILE).exists():
                hist.pop()
            if not hist:
                raise PolicytagError(f"{cur} is the first production version; there is nothing to roll back to "
                                     "(use `policytag models promote VERSION` to choose another)")
            prev = hist[-1]
            data["versions"][cur]["status"] = "retired"
            data["versions"][cur]["rolled_back_at"] = _iso(_now())
            data["versions"][prev]["status"] = "production"
            data["production"] = prev
            data["production_history"] = hist  # the rolled-back version leaves the history
            self._save(data)
        return prev

    def set_status(self, version: str, status: str) -> None:
        """Mark a non-production version ``candidate`` or ``retired``."""
        if status not in ("candidate", "retired"):
            raise PolicytagError("status must be 'candidate' or 'retired' (use promote for production)")
        with self._lock():
            data = self._load()
            vid = self._resolve_in(data, version)
            if vid == data["production"]:
                raise PolicytagError(f"{vid} is in production; promote or roll back to another version first")
            data["versions"][vid]["status"] = status
            self._save(data)

    def update(self, version: str, **fields: Any) -> None:
        """Store extra fields with a version (e.g. metrics computed later)."""
        with self._lock():
            data = self._load()
            vid = self._resolve_in(data, version)
            data["versions"][vid].update(fields)
            self._save(data)

    def _resolve_in(self, data: dict, version: str) -> str:
        if version in data["versions"]:
            return version
        return self.resolve(version)


def _rerender_card(model_dir: Path, meta: dict) -> None:
    """Refresh MODEL_CARD.md so it names the registered version (best effort)."""
    card = model_dir / "MODEL_CARD.md"
    if not card.exists():
        return
    try:
        from policytag.modeling.model_card import render_model_card

        atomic_write_text(card, render_model_card(meta))
    except Exception:  # noqa: BLE001 - the card is documentation; never fail a registration for it
        pass


def _mk(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _number(vid: str) -> int:
    m = re.match(r"^v(\d+)", vid)
    return int(m.group(1)) if m else 0


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

