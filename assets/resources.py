"""Dagster resources shared by every asset: paths, profile, device, pseudonymisation secret, DVC."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from brainfm.profiles import ProfileName, check_profile
from brainfm.pseudonym import Pseudonymizer
from brainfm.secrets import SECRET_ENV, SECRET_FILE_ENV, load_secret
from brainfm.versioning import DvcRepo, Snapshot


class PathsResource(dg.ConfigurableResource):
    """Where inputs come from and outputs go; relative paths are resolved against ``root``."""

    root: str = Field(default=".", description="Project root: a git + DVC repository.")
    raw_dir: str = Field(default="raw", description="Raw input (holds identifiers; never tracked).")
    data_dir: str = Field(
        default="data", description="De-identified and derived outputs, tracked by data.dvc."
    )
    quarantine_dir: str = Field(default="quarantine", description="Rejected inputs with reasons (untracked).")
    outputs_dir: str = Field(default="outputs", description="Human-facing figures and reports (untracked).")
    inbox_dir: str = Field(
        default="inbox",
        description="Studies to score, one folder per study (may hold identifiers, like raw/; never tracked).",
    )
    results_dir: str = Field(
        default="results",
        description="Batch-scoring results for the hospital: they identify the patient like the studies scored "
        "(DICOM SEG and SR for the PACS), so never tracked and never in outputs/.",
    )

    def _resolve(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else (Path(self.root) / path).resolve()

    @property
    def raw(self) -> Path:
        return self._resolve(self.raw_dir)

    @property
    def data(self) -> Path:
        return self._resolve(self.data_dir)

    @property
    def quarantine(self) -> Path:
        return self._resolve(self.quarantine_dir)

    @property
    def outputs(self) -> Path:
        return self._resolve(self.outputs_dir)

    @property
    def inbox(self) -> Path:
        return self._resolve(self.inbox_dir)

    @property
    def results(self) -> Path:
        return self._resolve(self.results_dir)

    def output(self, asset_name: str, partition: str | None = None) -> Path:
        """The folder an asset (partition) writes to: ``data/<asset>[/<partition>]``."""
        path = self.data / asset_name
        return path / partition if partition else path


class ProfileResource(dg.ConfigurableResource):
    """The active run profile (``tiny``, ``small``, ``full``), the global seed and CPU worker count."""

    name: str = "tiny"
    seed: int = 0
    workers: int = 1

    @property
    def profile(self) -> ProfileName:
        return check_profile(self.name)


class LanguageModelResource(dg.ConfigurableResource):
    """The stage-2 language model: empty ``checkpoint`` trains the default small LM here; a local folder holding
    a site's own causal LM and tokenizer (``save_pretrained`` layout) is loaded with ``from_pretrained`` instead.
    Nothing is ever fetched from a hub."""

    checkpoint: str = ""


class DeviceResource(dg.ConfigurableResource):
    """Torch device for training: ``auto`` picks CUDA when available, else CPU."""

    device: str = "auto"

    def resolve(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"


class DeidSecretResource(dg.ConfigurableResource):
    """Reads the pseudonymisation secret at run time from the environment; the value is never in config."""

    env_var: str = SECRET_ENV
    file_env_var: str = SECRET_FILE_ENV

    def pseudonymizer(self) -> Pseudonymizer:
        return Pseudonymizer(load_secret(self.env_var, self.file_env_var))


class DvcResource(dg.ConfigurableResource):
    """Versions asset outputs with DVC (``data.dvc`` at the project root) and pushes to the default remote."""

    enabled: bool = True
    push: bool = True

    def snapshot(self, paths: PathsResource, output: Path) -> Snapshot | None:
        if not self.enabled:
            return None
        root = Path(paths.root).resolve()
        repo = DvcRepo(root, data_dirname=paths.data.relative_to(root).as_posix())
        return repo.snapshot(output, push=self.push)
