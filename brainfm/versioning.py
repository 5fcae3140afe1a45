"""DVC versioning of pipeline outputs: snapshot ``data/``, push it, and restore any version by its hash.

The ``dvc`` CLI runs as a subprocess from its own tool environment (``.tools/dvc``): dvc's hydra-core pins
antlr4-python3-runtime 4.9 while dagster's asset-selection parser needs 4.13, so the two cannot share one
environment. The CLI is found from ``BRAINFM_DVC_BIN``, then ``.tools/dvc/bin/dvc`` in the repository, then PATH.

``data.dvc`` tracks the whole ``data/`` folder (de-identified and derived data and checkpoints only). After an
asset writes its output under ``data/``, :meth:`DvcRepo.snapshot` re-adds ``data/``, pushes it, and returns
two content hashes: the DVC tree hash of ``data/`` as a whole and the DVC tree hash of the asset's own
output folder (written into the cache and pushed as a DVC ``.dir`` object of its own), so either can be
restored with :meth:`DvcRepo.restore` without any git revision.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

DVC_ENV = "BRAINFM_DVC_BIN"
DEFAULT_REMOTE = "storage"


_HASH_CHUNK = 1 << 20  # bytes read at a time when hashing a file


def file_md5(path: Path) -> str:
    """MD5 of a file's bytes: the hash DVC records for it (``outs: md5``), so a file (e.g. a model's weights)
    can be matched against the versions of ``data.dvc``."""
    digest = hashlib.md5(usedforsecurity=False)
    with Path(path).open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class DvcError(RuntimeError):
    """A dvc command failed; the message carries the command and dvc's own explanation."""


def find_dvc(repo_root: Path) -> str:
    """Locate the dvc executable (see module docstring for the search order)."""
    if os.environ.get(DVC_ENV):
        return os.environ[DVC_ENV]
    local = repo_root / ".tools" / "dvc" / "bin" / "dvc"
    if local.is_file():
        return str(local)
    on_path = shutil.which("dvc")
    if on_path:
        return on_path
    raise DvcError(
        "dvc was not found. Run `make setup` (it installs dvc into .tools/dvc), or set BRAINFM_DVC_BIN to a "
        "dvc executable."
    )


@dataclass(frozen=True)
class Snapshot:
    """DVC content hashes (``<md5>.dir``) of the whole data folder and of one output inside it."""

    data_md5: str
    output_md5: str
    output_relpath: str
    n_files: int
    n_bytes: int


class DvcRepo:
    """A git + DVC repository whose ``data/`` folder is tracked by ``data.dvc``."""

    def __init__(self, root: Path, data_dirname: str = "data", dvc: str | None = None) -> None:
        self.root = Path(root).resolve()
        self.data_dirname = data_dirname
        self.dvc = dvc or find_dvc(self.root)

    @property
    def data_dir(self) -> Path:
        return self.root / self.data_dirname

    @property
    def cache_dir(self) -> Path:
        return self.root / ".dvc" / "cache"

    def run(self, *args: str, cwd: Path | None = None) -> str:
        """Run one dvc command; raise :class:`DvcError` with dvc's message if it fails."""
        cmd = [self.dvc, *args]
        proc = subprocess.run(cmd, cwd=cwd or self.root, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise DvcError(
                f"`dvc {' '.join(args)}` failed in {cwd or self.root}:\n{proc.stderr or proc.stdout}"
            )
        return proc.stdout

    def ensure_initialized(self, remote_url: str | None = None) -> None:
        """Make ``root`` a DVC repo with a default remote (a local folder unless ``remote_url`` says otherwise)."""
        if not (self.root / ".dvc").is_dir():
            self.run("init", "--quiet")
        if remote_url is not None and DEFAULT_REMOTE not in self.run("remote", "list"):
            self.run("remote", "add", "--default", DEFAULT_REMOTE, remote_url)

    def require_repository(self) -> None:
        """Raise :class:`DvcError` saying how to make ``root`` one unless it is a git + DVC repository (checked
        before anything is written there: no stray ``.dvc/tmp`` is left in a folder that is not one)."""
        missing = [name for name in (".git", ".dvc") if not (self.root / name).is_dir()]
        if missing:
            raise DvcError(
                f"{self.root} (BRAINFM_ROOT) is not a git + DVC repository ({' and '.join(missing)} missing), so "
                "pipeline outputs cannot be versioned there. Make it one: `git init && dvc init && dvc remote "
                "add --default storage <url>` in that folder (a local folder works as <url>), or point "
                "BRAINFM_ROOT at the brainfm checkout, or set BRAINFM_VERSIONING=0 to run without versioning."
            )

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise brainfm's dvc calls on this repo (partitions of one run add and push concurrently)."""
        lock_path = self.root / ".dvc" / "tmp" / "brainfm.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def snapshot(self, output: Path, push: bool = True) -> Snapshot:
        """Add ``data/`` to DVC, store ``output``'s own tree object, push both; return their hashes."""
        output = Path(output).resolve()
        try:
            rel = output.relative_to(self.data_dir).as_posix()
        except ValueError as err:
            raise DvcError(f"{output} is not inside the DVC-tracked folder {self.data_dir}.") from err
        self.require_repository()
        with self._lock():
            self.run("add", "--quiet", self.data_dirname)
            data_md5 = self._tracked_md5(self.root / f"{self.data_dirname}.dvc")
            entries = [
                {"md5": e["md5"], "relpath": e["relpath"][len(rel) + 1 :] if rel != "." else e["relpath"]}
                for e in self._read_tree(data_md5)
                if rel == "." or e["relpath"].startswith(rel + "/") or e["relpath"] == rel
            ]
            if len(entries) == 1 and entries[0]["relpath"] == "":
                output_md5 = entries[0]["md5"]  # a single file: its own md5 is its DVC hash
            else:
                output_md5 = self._write_tree(entries)
            if push:
                self.run("push", "--quiet", f"{self.data_dirname}.dvc")
                self._push_object(output_md5)
        n_bytes = sum(
            p.stat().st_size for p in ([output] if output.is_file() else output.rglob("*")) if p.is_file()
        )
        return Snapshot(data_md5, output_md5, rel, len(entries), n_bytes)

    def restore(self, md5: str, dest: Path) -> Path:
        """Fetch the version ``md5`` (a file md5 or a ``.dir`` tree hash) from the cache or remote into ``dest``.

        Works from the hash alone: a throwaway DVC repo that shares this repo's cache and remote checks
        the object out, so no git revision or ``.dvc`` file of the original run is needed.
        """
        dest = Path(dest)
        if dest.exists():
            raise FileExistsError(f"Restore target {dest} exists; choose a new folder or remove it first.")
        with tempfile.TemporaryDirectory(prefix="brainfm-restore-") as tmp:
            work = self._scratch_repo(Path(tmp))
            (work / "out.dvc").write_text(
                yaml.safe_dump({"outs": [{"md5": md5, "path": "out", "hash": "md5"}]})
            )
            self.run("pull", "--quiet", "out.dvc", cwd=work)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(work / "out"), dest)
        return dest

    # -- internals -------------------------------------------------------------------------------------

    def _object_path(self, md5: str) -> Path:
        return self.cache_dir / "files" / "md5" / md5[:2] / md5[2:]

    @staticmethod
    def _tracked_md5(dvc_file: Path) -> str:
        return str(yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"])

    def _read_tree(self, md5: str) -> list[dict[str, str]]:
        if not md5.endswith(".dir"):
            return [{"md5": md5, "relpath": ""}]
        return list(json.loads(self._object_path(md5).read_text()))

    def _write_tree(self, entries: list[dict[str, str]]) -> str:
        # Same serialisation as dvc_data's Tree.as_bytes(): a sorted JSON list of {md5, relpath}, whose md5
        # plus ".dir" is the tree's hash. Written by hand because dvc_data lives in dvc's own environment.
        body = json.dumps(sorted(entries, key=lambda e: e["relpath"]), sort_keys=True).encode()
        md5 = hashlib.md5(body).hexdigest() + ".dir"
        target = self._object_path(md5)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
            target.chmod(0o444)
        return md5

    def _remote_urls(self) -> dict[str, str]:
        """Each remote's URL as this repo resolves it (all config levels), local paths made absolute."""
        urls = {}
        for line in self.run("config", "--list").splitlines():
            match = re.fullmatch(r"remote\.(.+)\.url=(.*)", line.strip())
            if match:
                name, url = match.groups()
                if "://" not in url and not os.path.isabs(url):
                    url = str((self.root / ".dvc" / url).resolve())
                urls[name] = url
        return urls

    def _scratch_repo(self, tmp: Path) -> Path:
        """A no-scm DVC repo under ``tmp`` with this repo's cache and remotes.

        Its config is this repo's ``.dvc/config`` and ``config.local`` (remotes, credentials, endpoints),
        re-copied whenever they change, so a remote modified after the first push is the one pushed to.
        """
        work = tmp / "repo"
        sources = [self.root / ".dvc" / name for name in ("config", "config.local")]
        signature = "\0".join(p.read_text() if p.is_file() else "" for p in sources)
        stamp = work / ".dvc" / "tmp" / "brainfm-config-source"
        if stamp.is_file() and stamp.read_text() == signature:
            return work
        if not (work / ".dvc").is_dir():
            work.mkdir(parents=True, exist_ok=True)
            self.run("init", "--no-scm", "--quiet", cwd=work)
        for source in sources:
            target = work / ".dvc" / source.name
            if source.is_file():
                shutil.copyfile(source, target)
            else:
                target.unlink(missing_ok=True)
        for name, url in self._remote_urls().items():  # relative local remotes: relative to this .dvc/
            self.run("remote", "modify", "--local", name, "url", url, cwd=work)
        self.run("config", "--local", "core.no_scm", "true", cwd=work)
        self.run("config", "--local", "cache.dir", str(self.cache_dir), cwd=work)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(signature)
        return work

    def _push_object(self, md5: str) -> None:
        work = self._scratch_repo(self.root / ".dvc" / "tmp" / "brainfm-push")
        (work / "out.dvc").write_text(yaml.safe_dump({"outs": [{"md5": md5, "path": "out", "hash": "md5"}]}))
        self.run("push", "--quiet", "out.dvc", cwd=work)
