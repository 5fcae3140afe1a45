"""Running the deployed models on one study (:class:`Predictor`) or on a folder of studies (:func:`predict_batch`).

A :class:`Predictor` loads the pretrained encoder and the four stage-3 adapters the Dagster assets save under
MODELS_DIR (the project's ``data/`` folder) once, and keeps them for every study. Each study is ingested
through the training-time path (:mod:`brainfm.predict.study`), then every task runs through the functions the
adapters are evaluated with (``predict_studies``, ``predict_segmentation``, ``gradcam_maps``), so a study
gets the probabilities its held-out evaluation would give. torch and ``models`` are imported inside the
functions that run models (the core imports no torch).
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
import pandas as pd
import polars as pl
from tqdm import tqdm

from brainfm import __version__
from brainfm.imaging.masks import MASK_LABELS
from brainfm.imaging.shards import atomic_directory, open_slices
from brainfm.jsonl import atomic_text
from brainfm.predict.outputs import (
    Algorithm,
    lesion_measurements,
    measurement_report,
    save_segmentation_overlay,
    segmentation_dicom,
    write_json,
    write_nifti,
)
from brainfm.predict.study import (
    IngestedStudy,
    StudyError,
    frame_slices,
    ingest_study,
    series_sources,
    slices_to_volume,
)
from brainfm.pseudonym import Pseudonymizer
from brainfm.secrets import load_secret
from brainfm.versioning import file_md5

if TYPE_CHECKING:
    import torch
    from torch import nn

    from models.heads.aggregate import StudyHead
    from models.heads.study_data import Bag, StudyBags
    from models.heads.study_train import SliceEmbeddings

# Where the assets save what predict loads, relative to MODELS_DIR (assets/adapters.py: `_encoder_dir`,
# `seg_adapter`, STUDY_ASSETS; each adapter in `<asset>/adapter`).
ENCODER_DIR = "mae_encoder/checkpoint"
SEGMENTATION_DIR = "seg_adapter/adapter"
STUDY_ADAPTER_DIRS = {
    "classification": "cls_adapter/adapter", "grading": "grade_adapter/adapter",
    "prognosis": "prognosis_adapter/adapter",
}  # fmt: skip
# The stage-2 report model (the instruction-tuned vision-language model the `instructed_vlm` asset saves); a
# study is reported only when MODELS_DIR holds it.
REPORT_MODEL_DIR = "instructed_vlm/vlm"
REPORT_SLICES = 4  # slices per sequence (evenly spaced) the report model sees, as in its held-out evaluation
REPORT_MAX_TOKENS = 384
HASHED_FILES = (
    "mae.safetensors",
    "config.json",
)  # per model folder (models.checkpoint layout): weights, config
# Which series is segmented, among the oriented ones of the sequences the segmentation adapter was trained on:
# single-volume series first (a DICOM SEG references one volume's frames), then this order (FLAIR shows
# lesion and oedema), then the most slices.
SEGMENTATION_PREFERENCE = ("FLAIR", "T2", "T1", "DWI")
PREDICTIONS_FILE = "predictions.json"
OUTPUT_FILES = {
    "nifti": "segmentation.nii.gz", "dicom_seg": "segmentation_seg.dcm", "dicom_sr": "measurements_sr.dcm",
    "overlay_segmentation": "overlay_segmentation.png", "overlay_gradcam": "overlay_gradcam.png",
}  # fmt: skip
BATCH_FILE = "batch.json"
Precision = Literal["fp32", "bf16"]


def default_precision(device: str) -> Precision:
    """bf16 on CUDA and on CPUs with native bfloat16 arithmetic (AMX or AVX512-BF16, where oneDNN runs bf16
    matrix products several times faster than float32); fp32 on other CPUs, where bfloat16 is emulated and slower.
    torch exposes that CPU check only as ``torch.cpu._is_*_supported``; a torch without it gets fp32."""
    import torch

    if device.startswith("cuda"):
        return "bf16"
    checks = (getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))
    return "bf16" if device == "cpu" and any(check() for check in checks if check is not None) else "fp32"


def default_models_dir() -> Path:
    """The data folder the assets write to: ``$BRAINFM_ROOT/data``, else the checkout's ``data/`` (as
    ``dagster_project.resources`` resolves the project root)."""
    return Path(os.environ.get("BRAINFM_ROOT", Path(__file__).resolve().parents[2])) / "data"


def default_device() -> str:
    """``cuda`` when a GPU is available, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class _Timer:
    """Seconds per named step."""

    seconds: dict[str, float]

    @contextmanager
    def __call__(self, step: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[step] = round(time.perf_counter() - start, 3)


class _Slices:
    """The items `models.heads.seg_train.predict_segmentation` reads, for slices without masks: ``data[i]``
    → (uint8 (B, 1, H, W), no labels)."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: np.ndarray) -> tuple[np.ndarray, None]:
        return self.images[index][:, None], None


class Predictor:
    """The deployed models of MODELS_DIR, loaded once on ``device``; :meth:`predict` runs them on a study.

    The study's pseudonymous keys come from the site's de-identification secret (``BRAINFM_DEID_SECRET``),
    so that they match the keys of the site's pipeline data; without one, from a random key of this run.
    ``precision``: ``bf16`` runs the models under bfloat16 autocast (half the memory traffic of float32, the
    format they were trained in on the GPU), ``fp32`` in full precision; default :func:`default_precision`.
    ``report_tokens``: the generated report's budget in tokens (a trained model stops at its end token first).
    """

    def __init__(
        self,
        models_dir: Path,
        device: str = "cpu",
        precision: Precision | None = None,
        report_tokens: int = REPORT_MAX_TOKENS,
    ) -> None:
        import torch

        from models.checkpoint import load_encoder, read_config
        from models.heads.seg_train import SegConfig, load_segmentation

        self.models_dir, self.device, self.report_tokens = Path(models_dir), device, report_tokens
        self.precision: Precision = precision or default_precision(device)
        if self.precision not in get_args(Precision):
            raise ValueError(f"precision {self.precision!r}: choose one of {', '.join(get_args(Precision))}")
        folders = [ENCODER_DIR, SEGMENTATION_DIR, *STUDY_ADAPTER_DIRS.values()]
        missing = [f for f in folders if not (self.models_dir / f / "config.json").is_file()]
        if missing:
            raise FileNotFoundError(
                f"{self.models_dir} lacks the model folders {missing}: materialise mae_encoder, seg_adapter and "
                "the study adapters (cls_adapter, grade_adapter, prognosis_adapter), or pass --models with the "
                "data folder that holds them."
            )
        start = time.perf_counter()
        self.encoder = load_encoder(self.models_dir / ENCODER_DIR, device)
        self.segmenter = load_segmentation(self.models_dir / SEGMENTATION_DIR, self.encoder)
        self.seg_config = SegConfig(**read_config(self.models_dir / SEGMENTATION_DIR)["config"])
        self.heads = {
            task: self._study_adapter(self.models_dir / f) for task, f in STUDY_ADAPTER_DIRS.items()
        }
        # (study, items whose feature maps are kept, its SliceEmbeddings once built): see _slice_table
        self._embeddings: tuple[str, np.ndarray, Any] = ("", np.empty(0, dtype=np.int64), None)
        self.vlm = None
        if (self.models_dir / REPORT_MODEL_DIR).is_dir():
            from models.vlm.vlm import load_vlm

            self.vlm = load_vlm(self.models_dir / REPORT_MODEL_DIR, self.encoder, device).for_inference(
                torch.bfloat16 if self.precision == "bf16" else None
            )
        if self.precision == "bf16":
            # The encoders' weights in bfloat16 once: autocast casts a frozen module's weights again at every
            # forward (a third of the encoder's time on the CPU, docs/BENCHMARKS.md), and a bfloat16 encoder runs
            # in bfloat16 throughout (`HybridEncoder.forward_features`); heads and decoders stay float32 under
            # autocast.
            encoders = (self.encoder, self.segmenter.encoder, *(encoder for _, encoder in self.heads.values()))
            for encoder in {id(e): e for e in encoders}.values():
                encoder.to(torch.bfloat16)
        self.load_seconds = round(time.perf_counter() - start, 3)
        self.versions = {
            f: {name: file_md5(self.models_dir / f / name) for name in HASHED_FILES}
            for f in folders + ([REPORT_MODEL_DIR] if self.vlm is not None else [])
        }
        try:
            self.pseudonymizer, self.key = Pseudonymizer(load_secret()), "site"
        except RuntimeError:
            # No secret configured: the temporary de-identified copy is keyed for this run only.
            self.pseudonymizer, self.key = Pseudonymizer(secrets.token_bytes(32)), "ephemeral"

    def _study_adapter(self, folder: Path) -> tuple[StudyHead, nn.Module]:
        """A study head and the encoder it runs on: the shared one for a probe, its own for a fine-tuned one."""
        from models.checkpoint import read_config
        from models.heads.study_train import load_study_adapter

        finetuned = read_config(folder)["study_config"]["mode"] == "finetune"
        encoder = copy.deepcopy(self.encoder) if finetuned else self.encoder
        head, _ = load_study_adapter(folder, encoder)
        return head.to(self.device), encoder

    def predict(
        self, study_dir: Path, out_dir: Path, clinical: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Predict one study folder into ``out_dir`` (replaced whole, only once everything is written) and return
        what predictions.json holds. ``clinical``: the prognosis head's clinical variables (``age_years``,
        ``sex`` M/F, ``kps``, comorbidity flags); without them the risk is given at the training means.
        Raises :class:`~brainfm.predict.study.StudyError` for a study that cannot be predicted."""
        study_dir, out_dir = Path(study_dir), Path(out_dir)
        if out_dir.resolve().is_relative_to(study_dir.resolve()):
            raise StudyError(
                f"--out {out_dir} lies inside the study folder {study_dir}; choose a folder outside it."
            )
        covariates = self._covariates(clinical)  # checked before any work
        timer = _Timer({"load_models": self.load_seconds})
        with (
            tempfile.TemporaryDirectory(prefix="brainfm-predict-") as work,
            atomic_directory(out_dir) as stage,
        ):
            with timer("ingest"):
                study = ingest_study(study_dir, Path(work), self.pseudonymizer, _study_sequences())
            from models.heads.common import bf16_autocast

            with bf16_autocast(self.device, enabled=self.precision == "bf16"):
                result = self._predict(study, stage, timer, covariates)
            write_json(stage / PREDICTIONS_FILE, result)
        return result

    def _covariates(self, clinical: Mapping[str, Any] | None) -> torch.Tensor | None:
        """The prognosis head's standardised clinical variables (1, C), None without them."""
        if clinical is None:
            return None
        head, _ = self.heads["prognosis"]
        missing = [c for c in head.covariates if c not in clinical]
        if missing:
            raise StudyError(
                f"the clinical variables lack {missing}; give a JSON object with "
                f"{', '.join(head.covariates)} (sex 'M' or 'F', flags 0/1)"
            )
        try:
            return head.standardise(pd.DataFrame([{"study": "study", **clinical}]))
        except ValueError as e:
            raise StudyError(f"clinical variables: {e}") from e

    def _predict(
        self, study: IngestedStudy, stage: Path, timer: _Timer, covariates: torch.Tensor | None
    ) -> dict[str, Any]:
        from models.heads.study_data import StudyBags, flatten

        bags = StudyBags(study.slices_dir)
        warnings = list(study.warnings)
        sequences = self.seg_config.sequences or _study_sequences()
        segmented = _choose_series(study.volumes, sequences, oriented=True)
        series = segmented or _choose_series(study.volumes, _study_sequences(), oriented=False)
        assert series is not None  # ingest_study refused a study without any of these sequences
        images, slice_index, items = _series_slices(study, series)
        # A new study's slices, embedded afresh by the first probe head. That pass keeps the feature maps of the
        # segmented series (for a probe segmenter on the same encoder) and of the report model's slices, so
        # that no slice goes through the encoder twice.
        table = any(encoder is self.encoder for _, encoder in self.heads.values())  # a probe head builds one
        in_table = flatten([bags.all_slices(study.study)])
        shared = table and segmented is not None and self.segmenter.encoder is self.encoder
        shared = shared and bool(np.isin(items, in_table).all())
        keep = [items] if shared else []
        if table and self.vlm is not None:
            keep.append(flatten(self._report_bags(bags, study.study)))
        self._embeddings = (study.study, np.concatenate(keep) if keep else np.empty(0, dtype=np.int64), None)
        with timer("classification"):
            classification = self._classification(bags, study.study)
        with timer("grading"):
            grade = self._grade(bags, study.study, classification["subtype"]["label"])
        with timer("prognosis"):
            prognosis = self._prognosis(bags, study.study, covariates)
        segmentation, outputs, labels = None, {}, None
        if segmented is None:
            warnings.append(
                f"no {'/'.join(sequences)} series with a patient orientation: segmentation skipped"
            )
        else:
            with timer("segmentation"):
                maps = self._slice_table(self.encoder, bags, study.study).kept_maps(items) if shared else None
                labels = self._segment(images, maps)
            with timer("outputs"):
                segmentation, outputs, notes = self._write_segmentation(
                    study, series, labels, slice_index, stage
                )
            warnings += notes
        # The slice shown: the one with the largest predicted lesion, else the middle one.
        shown = (
            int(np.argmax((labels > 0).sum(axis=(1, 2))))
            if labels is not None and labels.any()
            else len(images) // 2
        )
        if labels is not None:
            outputs["overlay_segmentation"] = save_segmentation_overlay(
                stage / OUTPUT_FILES["overlay_segmentation"], images[shown], labels[shown],
                f"{series['sequence']}, slice {slice_index[shown]}: predicted lesion (red), oedema (yellow), "
                "necrosis (cyan)",
            ).name  # fmt: skip
        with timer("gradcam"):
            outputs["overlay_gradcam"] = self._gradcam(
                images[shown], None if labels is None else labels[shown] > 0,
                classification["category"]["label"], stage / OUTPUT_FILES["overlay_gradcam"],
            ).name  # fmt: skip
        result = {
            "brainfm_version": __version__,
            "study": {
                "key": study.study,
                "pseudonym_key": self.key,
                "input": study.kind,
                "series": _series_summary(study),
            },
            "classification": classification,
            "grade": grade,
            "prognosis": prognosis,
            "segmentation": segmentation,
            "report": None,
            "outputs": outputs,
            "models": {"folder": str(self.models_dir), "md5": self.versions, "precision": self.precision},
            "timings_s": timer.seconds,
            "quarantined": [
                {"path": e.path, "reason": str(e.reason), "detail": e.detail} for e in study.quarantined
            ],
            "warnings": warnings,
        }
        with timer("report"):
            result["report"] = self.generate_report(bags, study.study, classification, labels,
                                                    None if labels is None else _volume_row(study, series), slice_index)
        return result

    def _classification(self, bags: StudyBags, study: str) -> dict[str, Any]:
        head, encoder = self.heads["classification"]
        row = self._predict_row(encoder, head, bags, study)
        return {
            output: {
                "label": str(row[output]),
                "probabilities": {c: float(row[f"p_{output}_{c}"]) for c in classes},
            }
            for output, classes in head.classes.items()
        }

    def _grade(self, bags: StudyBags, study: str, subtype: str) -> dict[str, Any]:
        """The grade on the predicted subtype's scale, with P(grade above each level but the last)."""
        head, encoder = self.heads["grading"]
        if subtype not in head.scales:
            return {
                "scale": None,
                "label": None,
                "p_above": {},
                "note": f"the predicted subtype {subtype} has no grade scale",
            }
        row = self._predict_row(encoder, head, bags, study)
        levels = head.scales[subtype]
        return {
            "scale": subtype,
            "label": str(row[f"grade_{subtype}"]),
            "p_above": {level: float(row[f"p_{subtype}_gt_{level}"]) for level in levels[:-1]},
        }

    def _prognosis(self, bags: StudyBags, study: str, covariates: torch.Tensor | None) -> dict[str, Any]:
        """Cox risk (log hazard ratio, higher = shorter survival) and, with the patient's clinical variables,
        the two-year metastasis probability; without them the variables sit at the training means (0 once
        standardised), so the risk ranks the images alone and no probability is given."""
        import torch

        head, encoder = self.heads["prognosis"]
        given = covariates is not None
        row = self._predict_row(
            encoder, head, bags, study, covariates if given else torch.zeros(1, len(head.covariates))
        )
        return {
            "clinical": "given" if given else "training_mean",
            "risk_log_hazard_ratio": float(row["risk"]),
            "p_metastasis_2y": float(row["p_metastasis"]) if given else None,
        }

    def _predict_row(
        self, encoder: nn.Module, head: StudyHead, bags: StudyBags, study: str, covariates: Any = None
    ) -> pd.Series:
        """The head's prediction columns for one study, through the training-time evaluation path
        (`predict_studies`). Heads on the shared frozen encoder (probes) read one table of the study's slice
        embeddings, computed once per study: the encoder pass dominates predict on the CPU."""
        from models.heads.study_train import predict_studies

        embed = self._slice_table(encoder, bags, study) if encoder is self.encoder else None
        return predict_studies(encoder, head, bags, [study], covariates, progress=True, embed=embed).loc[study]

    def _slice_table(self, encoder: nn.Module, bags: StudyBags, study: str) -> SliceEmbeddings:
        """The study's table of slice embeddings on the shared encoder (and the kept feature maps), built once."""
        from models.heads.study_train import SliceEmbeddings

        key, keep, table = self._embeddings
        assert key == study, "_predict sets the study's table up first"
        if table is None:
            table = SliceEmbeddings(encoder, bags, [study], batch=64, keep_maps=keep)
            self._embeddings = (key, keep, table)
        return table

    @staticmethod
    def _report_bags(bags: StudyBags, study: str) -> list[Bag]:
        """The slices the report model reads: :data:`REPORT_SLICES` evenly spaced per sequence."""
        from models.vlm.visual import spread_bags

        return spread_bags(bags, [study], REPORT_SLICES)

    def _segment(self, images: np.ndarray, feature_maps: list[torch.Tensor] | None) -> np.ndarray:
        from models.heads.seg_train import predict_segmentation

        return predict_segmentation(  # its own autocast would override predict's on the CPU
            self.segmenter, _Slices(images), bf16=self.precision == "bf16", feature_maps=feature_maps  # type: ignore[arg-type]
        )

    def _write_segmentation(
        self,
        study: IngestedStudy,
        series: Mapping[str, Any],
        labels: np.ndarray,
        slice_index: list[int],
        stage: Path,
    ) -> tuple[dict[str, Any], dict[str, str], list[str]]:
        """The label volume on the series' own grid as NIfTI and, for a single-volume DICOM series, as DICOM SEG
        and TID 1500 SR over its original instances; returns the JSON section, the files and warnings."""
        volume = _volume_row(study, series)
        affine = np.reshape(np.asarray(volume["affine"], dtype=np.float64), (4, 4))
        labels_3d = slices_to_volume(labels, slice_index, volume)
        measurements = lesion_measurements(labels_3d, affine)
        outputs = {"nifti": write_nifti(stage / OUTPUT_FILES["nifti"], labels_3d, affine).name}
        notes = []
        if study.kind == "nifti":
            notes.append("NIfTI input: no DICOM instances to reference, so no DICOM SEG or SR was written")
        elif series["volumes"] > 1:
            notes.append(
                f"the segmented series has {series['volumes']} volumes: no DICOM SEG or SR was written"
            )
        else:
            sources = series_sources(study, str(series["series"]))
            frames = np.stack([labels_3d[:, :, k] for ds in sources for k in frame_slices(ds, volume)])
            algorithm = Algorithm("brainfm seg_adapter", self.versions[SEGMENTATION_DIR]["mae.safetensors"])
            seg = segmentation_dicom(sources, frames, algorithm)
            seg.save_as(stage / OUTPUT_FILES["dicom_seg"])
            measurement_report(seg, sources, measurements, algorithm).save_as(
                stage / OUTPUT_FILES["dicom_sr"]
            )
            outputs |= {"dicom_seg": OUTPUT_FILES["dicom_seg"], "dicom_sr": OUTPUT_FILES["dicom_sr"]}
        section = {
            "series": series["series"], "sequence": series["sequence"], "shape": list(volume["shape"]),
            "labels": {str(k): v for k, v in MASK_LABELS.items()}, "measurements": measurements,
        }  # fmt: skip
        return section, outputs, notes

    def _gradcam(self, image: np.ndarray, lesion: np.ndarray | None, category: str, path: Path) -> Path:
        """Grad-CAM of the predicted category on one slice (the predicted lesion outlined)."""
        import torch

        from models.heads.gradcam import gradcam_maps, save_gradcam_overlay

        head, encoder = self.heads["classification"]
        target = head.classes["category"].index(category)
        cam = gradcam_maps(encoder, head, torch.from_numpy(image[None, None]), target)[0].cpu().numpy()
        return save_gradcam_overlay(path, image, cam, lesion, f"Grad-CAM: {category}")

    def generate_report(
        self, bags: StudyBags, study: str, classification: Mapping[str, Any], labels: np.ndarray | None,
        volume: Mapping[str, Any] | None, slice_index: list[int],
    ) -> dict[str, Any] | None:
        """The generated Chinese report of a study (the stage-2 model over the study's slices ``bags``) with the
        grounding verdict of each abnormal finding against this study's own classification and segmentation
        (``labels`` on the slices ``slice_index`` of ``volume``); None when MODELS_DIR holds no stage-2 model
        (:data:`REPORT_MODEL_DIR`): nothing is ever made up in its place."""
        if self.vlm is None:
            return None
        from brainfm.grounding import SegmentedSlice, check_report, evidence_from_predictions
        from brainfm.reports.sections import split_sections
        from models.heads.study_data import flatten
        from models.vlm.align_train import REPORT_PROMPT

        cache = self.vlm.feature_cache(bags)
        key, _, table = self._embeddings
        drawn = self._report_bags(bags, study)
        shown = flatten(drawn)
        if key == study and table is not None and np.isin(shown, table.kept).all():  # the heads' pass kept them
            cache.fill(shown, table(shown), table.kept_maps(shown))
        visual = cache.batch([study], drawn)
        text = self.vlm.generate(visual, REPORT_PROMPT, self.report_tokens)[0]
        probabilities = {f"p_category_{c}": p for c, p in classification["category"]["probabilities"].items()}
        slices = None if labels is None or volume is None else [
            SegmentedSlice(labels[i] > 0, volume, k) for i, k in enumerate(slice_index)
        ]
        grounding = check_report(text, evidence_from_predictions(probabilities, slices))
        sections = split_sections(text)
        return {
            "text": text,
            "findings": sections.findings,
            "impression": sections.impression,
            "grounding": [
                {"claim": v.claim, "value": v.value, "verdict": v.verdict, "reason": v.reason}
                for v in grounding.verdicts
            ],
            "flags": list(grounding.flags),
            "model": REPORT_MODEL_DIR,
        }


def _study_sequences() -> tuple[str, ...]:
    from models.heads.study_data import STUDY_SEQUENCES

    return STUDY_SEQUENCES



def _choose_series(
    volumes: pl.DataFrame, sequences: tuple[str, ...], oriented: bool
) -> dict[str, Any] | None:
    """The series to segment and show (:data:`SEGMENTATION_PREFERENCE`) among ``sequences``, with its number
    of volumes; only series with a patient orientation when ``oriented``; None when there is none."""
    counted = volumes.group_by("series").agg(pl.len().alias("volumes"), pl.col("shape").first())
    first = volumes.filter(pl.col("volume") == 0, pl.col("sequence").is_in(list(sequences)))
    if oriented:
        first = first.filter(pl.col("plane") != "unknown")
    candidates = first.select("series", "sequence").join(counted, on="series")
    if candidates.is_empty():
        return None
    rank = {s: i for i, s in enumerate(SEGMENTATION_PREFERENCE)}
    return min(
        candidates.iter_rows(named=True),
        key=lambda r: (r["volumes"] > 1, rank.get(r["sequence"], len(rank)), -r["shape"][2], r["series"]),
    )


def _volume_row(study: IngestedStudy, series: Mapping[str, Any]) -> dict[str, Any]:
    return study.volumes.filter(pl.col("series") == series["series"], pl.col("volume") == 0).row(
        0, named=True
    )


def _series_slices(study: IngestedStudy, series: Mapping[str, Any]) -> tuple[np.ndarray, list[int], np.ndarray]:
    """The kept normalised slices (n, 256, 256) of the series' first volume, by slice_index, their indices and
    their item ids in the study's slice store."""
    store = open_slices(study.slices_dir)
    rows = (
        store.index.with_row_index("item")
        .filter(pl.col("series") == series["series"], pl.col("volume") == 0)
        .sort("slice_index")
    )
    return np.stack([store[i] for i in rows["item"]]), rows["slice_index"].to_list(), rows["item"].to_numpy()


def _series_summary(study: IngestedStudy) -> list[dict[str, Any]]:
    """Per normalised series: its key, sequence, plane, volumes and kept and excluded slices."""
    kept = study.index.group_by("series").len("slices")
    excluded = study.qc.filter(pl.col("slice_index") >= 0).group_by("series").len("excluded_slices")
    table = (
        study.volumes.group_by("series", maintain_order=True)
        .agg(pl.col("sequence").first(), pl.col("plane").first(), pl.len().alias("volumes"))
        .join(kept, on="series", how="left")
        .join(excluded, on="series", how="left")
        .fill_null(0)
        .sort("series")
    )
    return table.to_dicts()


def read_clinical(path: Path) -> dict[str, Any]:
    """A JSON object from ``path`` (clinical variables of one study, or, for ``--batch``, one such object per
    study folder name)."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise StudyError(f"cannot read the clinical file {path} ({e}); give a JSON object") from e
    if not isinstance(value, dict):
        raise StudyError(f"{path} does not hold a JSON object of clinical variables")
    return value


def study_folders(root: Path) -> list[Path]:
    """The study folders directly under ``root``, by name, hidden ones left out; none when it is no folder."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def predict_batch(
    predictor: Predictor, root: Path, out: Path, clinical: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, str]:
    """Predict every study folder directly under ``root`` into ``out/<folder name>/`` with the models loaded
    once; a study that cannot be predicted is reported and the others go on. ``clinical``: per folder name,
    its clinical variables. Returns folder name → ``ok`` or the error, also written to ``out/batch.json``."""
    root = Path(root)
    studies = study_folders(root)
    if not studies:
        raise StudyError(f"{root} holds no study folders; --batch takes a folder with one folder per study.")
    if clinical is not None and not all(isinstance(v, Mapping) for v in clinical.values()):
        raise StudyError(
            "with --batch, the clinical file maps each study folder's name to a JSON object of its "
            "clinical variables"
        )
    status: dict[str, str] = {}
    for folder in tqdm(studies, desc="studies", unit="study", disable=None):
        try:
            predictor.predict(folder, Path(out) / folder.name, (clinical or {}).get(folder.name))
            status[folder.name] = "ok"
        except StudyError as e:
            status[folder.name] = str(e)
    write_batch_status(out, status)
    return status


def write_batch_status(out: Path, status: Mapping[str, str]) -> Path:
    """``out/batch.json``: study folder name → ``ok`` or the reason it was not predicted, replaced whole."""
    path = Path(out) / BATCH_FILE
    with atomic_text(path) as f:
        f.write(json.dumps(status, indent=1, ensure_ascii=False) + "\n")
    return path
