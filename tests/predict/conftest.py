"""A tiny study written by the synthetic cohort's own writer, tiny random-initialised models saved with the real
save functions, and one prediction of that study shared by the tests.

The study is one glioma patient of center_b (classic single-frame DICOM, 160×160, 20 slices) keeping its T1 and
FLAIR series, plus two files the ingest must quarantine and a copy of the T1 series with an impossible pixel
spacing, which the ingest leaves out. The segmentation head's output bias is raised for label
1 so that it labels every pixel "lesion": the segmentation is then known (every kept slice, whole), which the
geometry tests compare against.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest
import torch
from pydicom.uid import generate_uid
from torch import nn

from brainfm.predict.run import Predictor
from brainfm.synth.cohort import PatientTask, build_patient
from brainfm.synth.profiles import CENTERS
from models.checkpoint import save_checkpoint
from models.heads.classification import ClassificationHead
from models.heads.grading import GradingHead
from models.heads.prognosis import CLINICAL_COVARIATES, PrognosisHead
from models.heads.seg_train import SegConfig, save_segmentation
from models.heads.segmentation import SegmentationModel
from models.heads.study_train import StudyConfig, save_study_adapter
from models.hybrid_encoder import create_encoder

KEPT_SEQUENCES = ("T1", "FLAIR")
CATEGORIES = ["normal", "tumor", "cerebrovascular"]
SUBTYPES = ["glioma", "infarct", "meningioma", "normal"]
ALL_LESION_BIAS = 50.0  # logit added to label 1 ("lesion"): far above what the random decoder outputs


@dataclass(frozen=True)
class Study:
    """A study folder and the generator's record of it (original UIDs, series folders)."""

    raw: Path
    folder: Path
    record: dict[str, Any]

    def series_dir(self, sequence: str) -> Path:
        return self.raw / next(s["dir"] for s in self.record["series"] if s["sequence"] == sequence)


def write_study(raw: Path, index: int, subtype: str = "glioma") -> Study:
    """One patient of center_b as the cohort writes it, keeping only the T1 and FLAIR series."""
    (raw / "masks").mkdir(parents=True, exist_ok=True)
    record = build_patient(PatientTask(0, index, subtype, CENTERS[1], raw, burned_in=False))
    for series in record["series"]:
        if series["sequence"] not in KEPT_SEQUENCES:
            shutil.rmtree(raw / series["dir"])
    return Study(raw, raw / record["study_dir"], record)


Edit = Callable[[pydicom.Dataset], None]


def copy_series(source: Path, target: Path, edit: Edit, new_uids: bool = True) -> Path:
    """Every file of a series folder, read with pydicom, changed by ``edit`` and written to ``target``; with
    ``new_uids`` a series of its own (new Series and SOP Instance UIDs)."""
    target.mkdir(parents=True)
    series = generate_uid()
    for path in sorted(source.iterdir()):
        ds = pydicom.dcmread(path)
        if new_uids:
            ds.SeriesInstanceUID, ds.SOPInstanceUID = series, generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        edit(ds)
        ds.save_as(target / path.name)
    return target


def zero_spacing(ds: pydicom.Dataset) -> None:
    ds.PixelSpacing = [0, 0]


@pytest.fixture(scope="session")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    """The shared study, with a text file and a truncated DICOM file beside its images and a T1 series copy
    whose PixelSpacing is 0\\0."""
    written = write_study(tmp_path_factory.mktemp("predict_raw"), index=1)
    (written.folder / "notes.txt").write_text("scanned request form, not an image")
    flair = min(written.series_dir("FLAIR").iterdir()).read_bytes()
    (written.series_dir("FLAIR") / "broken.dcm").write_bytes(flair[: len(flair) // 2])
    copy_series(written.series_dir("T1"), written.folder / "T1_copy", zero_spacing)
    return written


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MODELS_DIR as the assets lay it out: a tiny 256-px encoder checkpoint and the four adapters."""
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    encoder = create_encoder("tiny", in_chans=1, img_size=256).eval()
    meta = {"model": "tiny", "in_chans": 1, "img_size": 256}
    save_checkpoint(root / "mae_encoder" / "checkpoint", nn.ModuleDict({"encoder": encoder}), meta, {})
    seg_config = SegConfig(steps=0, width=8)
    segmenter = SegmentationModel(encoder, seg_config.n_classes, seg_config.width)
    with torch.no_grad():
        segmenter.decoder.out.conv.conv.bias[1] += ALL_LESION_BIAS
    save_segmentation(root / "seg_adapter" / "adapter", segmenter, seg_config, [], encoder)
    dim, config = encoder.embed_dim, StudyConfig()
    heads = {
        "cls_adapter": ClassificationHead(dim, CATEGORIES, SUBTYPES),
        "grade_adapter": GradingHead(dim),
        "prognosis_adapter": PrognosisHead(
            dim, CLINICAL_COVARIATES, [55.0, 0.5, 80.0, 0.3, 0.1, 0.2], [10.0, 0.5, 10.0, 0.46, 0.3, 0.4]
        ),
    }
    for asset, head in heads.items():
        save_study_adapter(root / asset / "adapter", encoder, head, config)
    return root


@pytest.fixture(scope="session")
def predictor(models_dir: Path) -> Predictor:
    # fp32, as the training-time evaluation runs on the CPU, so that the two paths' predictions compare exactly;
    # the bf16 path (the default on CPUs with native bf16) is compared with it in test_precision.py.
    return Predictor(models_dir, "cpu", precision="fp32")


@pytest.fixture(scope="session")
def predicted(
    predictor: Predictor, study: Study, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict]:
    """The shared study predicted once: its output folder and the returned predictions."""
    out = tmp_path_factory.mktemp("predicted") / "out"
    return out, predictor.predict(study.folder, out)
