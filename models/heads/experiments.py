"""One adapter run: an encoder (pretrained or from scratch), a task head trained on the training patients and
its predictions for the held-out patients. The assets and `bench/adapters.py` call these and score the
predictions with `brainfm.evaluation.adapters`; nothing here computes a metric.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from models.checkpoint import load_encoder, read_config
from models.heads.aggregate import StudyHead
from models.heads.classification import ClassificationHead, classification_loss
from models.heads.grading import GRADE_SCALES, GradingHead, ordinal_loss
from models.heads.prognosis import PrognosisHead, prognosis_loss
from models.heads.seg_data import SegmentationSlices
from models.heads.seg_train import SegConfig, predict_segmentation, train_segmentation
from models.heads.study_data import StudyBags, flatten
from models.heads.study_train import (
    SliceEmbeddings,
    StudyConfig,
    StudyLoss,
    predict_studies,
    train_study_adapter,
)
from models.hybrid_encoder import HybridEncoder, create_encoder

StudyTask = Literal["classification", "grading", "prognosis"]
STUDY_TASKS: tuple[str, ...] = ("classification", "grading", "prognosis")
EncoderSource = Literal["pretrained", "scratch"]
_LOSSES: dict[str, StudyLoss] = {
    "classification": classification_loss, "grading": ordinal_loss, "prognosis": prognosis_loss,
}


@dataclass(frozen=True)
class Variant:
    """How the encoder enters a run: its weights (`pretrained` checkpoint or `scratch`: the same architecture,
    randomly initialised) and whether it is frozen (`probe`) or trained (`finetune`)."""

    source: EncoderSource
    mode: Literal["probe", "finetune"]

    @property
    def name(self) -> str:
        return f"{self.source}-{self.mode}"


# The rows of every adapter table: the foundation model as a probe and fine-tuned, and the baseline the issue
# names (the same network trained from scratch, i.e. fine-tuned from a random initialisation).
VARIANTS: tuple[Variant, ...] = (
    Variant("pretrained", "probe"), Variant("pretrained", "finetune"), Variant("scratch", "finetune"),
)


# Fine-tuning runs the encoder forward and backward over every step's slices; probes read embeddings computed
# once. On the tiny profile (CI, 2 CPU cores) fine-tuning a study adapter therefore gets a short budget of small
# bags (about 10 s per run) while probes keep the profile's steps.
TINY_STUDY_FINETUNE = {"steps": 20, "batch_studies": 8, "slices_per_series": 2}


def study_config(profile: str, variant: Variant, seed: int, finetune_steps: int | None = None) -> StudyConfig:
    """The study-adapter config of a variant under a profile; `finetune_steps` overrides a fine-tuning run's
    steps (benchmarks on the CPU)."""
    overrides = dict(TINY_STUDY_FINETUNE) if profile == "tiny" and variant.mode == "finetune" else {}
    if finetune_steps is not None and variant.mode == "finetune":
        overrides["steps"] = finetune_steps
    return StudyConfig.profile(profile, mode=variant.mode, seed=seed, **overrides)


def seg_config(profile: str, variant: Variant, seed: int, finetune_steps: int | None = None) -> SegConfig:
    """The segmentation config of a variant under a profile; `finetune_steps` as in `study_config`."""
    overrides = {"steps": finetune_steps} if finetune_steps is not None and variant.mode == "finetune" else {}
    return SegConfig.profile(profile, mode=variant.mode, seed=seed, **overrides)


def make_encoder(source: EncoderSource, pretrained_dir: Path, seed: int, device: str = "cpu") -> HybridEncoder:
    """The pretrained encoder of `pretrained_dir`, or a random one of the same size and input (`scratch`, drawn
    under `seed`)."""
    if source == "pretrained":
        return load_encoder(pretrained_dir, device)
    config = read_config(pretrained_dir)
    torch.manual_seed(seed)
    return create_encoder(config["model"], config["in_chans"], config["img_size"]).to(device)


def build_head(task: StudyTask, dim: int, train: pd.DataFrame, classes: pd.DataFrame, seed: int) -> StudyHead:
    """A freshly initialised head (under `seed`): classification over every category and subtype of `classes`
    (the whole label table, so a class absent from training still has an output), grading on the scales of
    `GRADE_SCALES`, prognosis standardising the clinical variables with the training rows' statistics."""
    torch.manual_seed(seed)
    if task == "classification":
        return ClassificationHead(dim, sorted(classes["category"].unique()), sorted(classes["subtype"].unique()))
    if task == "grading":
        return GradingHead(dim, GRADE_SCALES)
    if task == "prognosis":
        return PrognosisHead.fit_scaler(dim, train)
    raise ValueError(f"unknown study task {task!r}; choose one of {', '.join(STUDY_TASKS)}")


@dataclass
class StudyRun:
    """A trained study adapter: its head, the encoder it ran on, the loss per step, and one row per held-out
    study with the truth columns of `test` and the head's prediction columns (a predicted label named like a
    truth column gets the prefix ``pred_``: ``pred_category``)."""

    head: StudyHead
    encoder: nn.Module
    history: list[float]
    predictions: pd.DataFrame


def fit_study_task(
    task: StudyTask,
    encoder: nn.Module,
    bags: StudyBags,
    train: pd.DataFrame,
    test: pd.DataFrame,
    config: StudyConfig,
    classes: pd.DataFrame,
    progress: bool = False,
    embeddings: SliceEmbeddings | None = None,
) -> StudyRun:
    """Train a `task` head on the studies of `train` (one row per study: labels, clinical variables, outcomes)
    and predict the studies of `test`. Grading trains and predicts on graded studies only.

    `embeddings`: a probe's frozen `encoder` slice table covering the training and test studies, built once and
    shared by every probe run on that encoder (label fractions, seeds, tasks): no slice is embedded again.
    Fine-tuning changes the encoder, so it refuses a table."""
    if embeddings is not None and config.mode != "probe":
        raise ValueError(f"{task}: precomputed slice embeddings serve only a probe (frozen encoder), not "
                         f"{config.mode}: pass embeddings=None for fine-tuning runs")
    if task == "grading":
        train, test = (t[t["subtype"].isin(list(GRADE_SCALES)) & t["grade"].notna()] for t in (train, test))
    train, test = (t[t["study"].isin(bags.studies)].reset_index(drop=True) for t in (train, test))
    if train.empty or test.empty:
        raise ValueError(f"{task}: {len(train)} training and {len(test)} test studies have images; need both")
    studies = [*train["study"], *test["study"]]
    if embeddings is not None and not np.isin(flatten([bags.all_slices(s) for s in studies]),
                                              embeddings.items).all():
        raise ValueError(f"{task}: the slice embeddings lack slices of these studies; build SliceEmbeddings over "
                         "every study the runs train and test on (e.g. all studies of the label table)")
    head = build_head(task, encoder.embed_dim, train, classes, config.seed)
    history = train_study_adapter(encoder, head, bags, head.targets(train), _LOSSES[task], config, progress,
                                  embeddings)
    covariates = head.standardise(test) if isinstance(head, PrognosisHead) else None
    predicted = predict_studies(encoder, head, bags, list(test["study"]), covariates, config.embed_batch, progress,
                                embeddings)
    predicted = predicted.rename(columns={c: f"pred_{c}" for c in predicted.columns if c in test.columns})
    merged = test.merge(predicted.reset_index(), on="study", how="left", validate="one_to_one")
    return StudyRun(head, encoder, history, merged)


@dataclass
class SegRun:
    """A trained segmentation adapter, its loss per step, and the held-out predictions as one label volume per
    (study, series, volume): `volumes` has the keys, spacing and slice indices per volume, `images` (uint8, first
    channel), `predicted` and `truth` (labels) the arrays (slices, 256, 256) in slice_index order."""

    model: nn.Module
    history: list[float]
    volumes: pd.DataFrame
    images: list[np.ndarray]
    predicted: list[np.ndarray]
    truth: list[np.ndarray]


def fit_segmentation(
    encoder: nn.Module,
    image_dirs: Sequence[Path],
    mask_dirs: Sequence[Path],
    train_patients: Sequence[str],
    test_patients: Sequence[str],
    empty_studies: Sequence[str],
    config: SegConfig,
    progress: bool = False,
) -> SegRun:
    """Train on the training patients' mask slices of `config.sequences` (and the slices of their lesion-free
    `empty_studies`, all background), predict those of the test patients, and stack the predictions per
    volume."""
    train = SegmentationSlices(image_dirs, mask_dirs, train_patients, config.sequences, empty_studies)
    test = SegmentationSlices(image_dirs, mask_dirs, test_patients, config.sequences, empty_studies)
    model, history = train_segmentation(encoder, train, config, progress)
    predicted = predict_segmentation(model, test)
    keys = test.keys.reset_index(drop=True)
    batches = [test[np.arange(lo, min(lo + 64, len(test)))] for lo in range(0, len(test), 64)]
    images = np.concatenate([b[0][:, 0] for b in batches])
    truth = np.concatenate([b[1] for b in batches])
    volumes, image_volumes, pred_volumes, true_volumes = [], [], [], []
    for key, group in keys.groupby(["patient", "study", "series", "volume"], sort=True):
        rows = group.sort_values("slice_index").index.to_numpy()
        first = group.iloc[0]
        volumes.append({
            "patient": key[0], "study": key[1], "series": key[2], "volume": key[3], "sequence": first["sequence"],
            "slices": len(rows), "pixel_mm": float(first["pixel_mm"]), "slice_mm": float(first["slice_mm"]),
            "slice_index": keys.loc[rows, "slice_index"].astype(int).tolist(),
        })
        image_volumes.append(images[rows])
        pred_volumes.append(predicted[rows])
        true_volumes.append(truth[rows].astype(np.uint8))
    return SegRun(model, history, pd.DataFrame(volumes), image_volumes, pred_volumes, true_volumes)
