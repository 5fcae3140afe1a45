"""Stage 3: task adapters on the pretrained encoder — segmentation, classification, grading, prognosis — each
trained on the downstream training patients and scored on the held-out ones (7:3 by patient), against the same
network trained from scratch and the baselines each task names."""

# No `from __future__ import annotations` in asset modules: Dagster reads parameter annotations at runtime.

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import great_expectations as gx
import numpy as np
import pandas as pd

from assets.figures import png_metadata
from assets.gating import cleared_centers, gx_asset_check
from assets.ingest import NORMALIZED_SLICES
from assets.ingest_checks import normalized_format, normalized_qc_rate, normalized_split
from assets.lineage import lineage
from assets.masks import lesion_masks, lesion_masks_aligned, lesion_masks_labelled, lesion_masks_placed
from assets.pretrain import mae_encoder
from assets.resources import DeviceResource, DvcResource, PathsResource, ProfileResource
from assets.tables import clinical_tables
from assets.versioning import versioned
from brainfm.evaluation import Estimate
from brainfm.grounding.segmentations import lesion_slice_table
from brainfm.tables import read_oracle, study_table
from brainfm.validation import Gate

if TYPE_CHECKING:  # torch loads only when an adapter asset runs
    from models.heads.experiments import SegRun

METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.parquet"  # held-out predictions of the deployed adapter, one row per study
GRADCAM_FILE = "gradcam.json"  # the classifier's Grad-CAM scores on held-out lesion slices, and its overlay
LESIONS_FILE = "lesion_predictions.parquet"  # the deployed segmenter's held-out slices (grounding evidence)
IMAGE_CHECKS = [normalized_format, normalized_split, normalized_qc_rate]
MASK_CHECKS = [*IMAGE_CHECKS, lesion_masks_aligned, lesion_masks_placed, lesion_masks_labelled]
# The variant each asset saves as its adapter: heads on the frozen encoder, so that inference runs one encoder
# pass per slice for every task. Fine-tuned and scratch variants are trained and reported beside it.
DEPLOYED = "pretrained-probe"
# Floors each deployed adapter must reach on the held-out patients (point estimates; chance is lower):
# whole-lesion Dice, category accuracy, grade accuracy, Harrell's C.
MIN_WHOLE_DICE = 0.2
MIN_CATEGORY_ACCURACY = 0.2  # chance: 1/8 categories
MIN_GRADE_ACCURACY = 0.3
MIN_C_INDEX = 0.5
# Pretrained must beat scratch only where the held-out set can tell them apart: with fewer test patients the
# 95 % CIs of both span most of the scale (tiny cohort: 10 test patients), and the comparison is the
# benchmark's (bench/adapters.py, docs/BENCHMARKS.md).
MIN_PATIENTS_FOR_COMPARISON = 50
MAX_GRADCAM_SLICES = 200  # held-out lesion slices scored by Grad-CAM


def encoder_dir(paths: PathsResource) -> Path:
    """The pretrained encoder's checkpoint folder (`models.train.pretrain` writes it under its output)."""
    return paths.output("mae_encoder") / "checkpoint"


def metric_rows(variant: str, scores: dict[str, Estimate], n_test: int) -> list[dict[str, object]]:
    """Long-form rows (variant, metric, value, low, high, n_patients) for metrics.json and the gates."""
    return [
        {"variant": variant, "metric": name, "value": e.value, "low": e.low, "high": e.high, "n_patients": n_test}
        for name, e in scores.items()
    ]


def metrics_markdown(rows: list[dict[str, object]]) -> str:
    """A Markdown table: one row per metric, one column per variant, 'value (low–high)'."""
    frame = pd.DataFrame(rows)
    frame["cell"] = [f"{v:.3f} ({lo:.3f}–{hi:.3f})" for v, lo, hi in zip(frame["value"], frame["low"], frame["high"])]
    table = frame.pivot(index="metric", columns="variant", values="cell").fillna("")
    header = "| metric | " + " | ".join(table.columns) + " |"
    lines = [header, "|" + "---|" * (len(table.columns) + 1)]
    lines += [f"| {m} | " + " | ".join(table.loc[m]) + " |" for m in table.index]
    n = int(frame["n_patients"].max())
    return f"Held-out patients: {n}; 95 % patient-bootstrap CIs.\n\n" + "\n".join(lines)


def write_metrics(out: Path, rows: list[dict[str, object]], extra: dict[str, object]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / METRICS_FILE).write_text(json.dumps({"rows": rows, **extra}, indent=1, default=str))


def _split(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return table[table["split"] == "train"], table[table["split"] == "test"]


@dg.asset(
    deps=[mae_encoder, clinical_tables, lesion_masks],
    group_name="stage3",
    pool="gpu",
    description="Lesion segmentation (lesion / oedema / necrosis) from the encoder's multi-scale features: "
    "UNETR-style decoder, as a frozen-encoder probe, fine-tuned, and from scratch; Dice and HD95 (mm) per held-out "
    "series with 95 % patient-bootstrap CIs, an overlay.",
)
def seg_adapter(
    context: dg.AssetExecutionContext,
    paths: PathsResource,
    profile: ProfileResource,
    device: DeviceResource,
    dvc: DvcResource,
) -> dg.MaterializeResult:
    from brainfm.evaluation.segmentation import score_studies, segmentation_estimates, series_spacings_mm
    from models.heads.experiments import VARIANTS, fit_segmentation, make_encoder, seg_config
    from models.heads.seg_train import save_segmentation

    centers, left_out = cleared_centers(context, MASK_CHECKS)
    table = study_table(paths.output("clinical_tables"))
    train, test = _split(table)
    empty = list(table.loc[table["category"] == "normal", "study"])
    images = [paths.output("normalized_slices", c) for c in centers]
    masks = [paths.output("lesion_masks", c) for c in centers]
    out, figures = paths.output("seg_adapter"), paths.outputs / "seg_adapter"
    rows, deployed = [], None
    for variant in VARIANTS:
        config = seg_config(profile.profile, variant, profile.seed)
        encoder = make_encoder(variant.source, encoder_dir(paths), profile.seed, device.resolve())
        run = fit_segmentation(
            encoder, images, masks, list(train["patient"]), list(test["patient"]), empty, config, progress=True
        )
        spacing = series_spacings_mm(run.volumes["slice_mm"], run.volumes["pixel_mm"])
        scores = score_studies(run.predicted, run.truth, spacing)
        estimates = segmentation_estimates(run.volumes["patient"], scores, seed=profile.seed)
        rows += metric_rows(variant.name, estimates, test["patient"].nunique())
        context.log.info(f"{variant.name}: whole-lesion Dice {estimates['dice_whole'].format()}")
        if variant.name == DEPLOYED:
            deployed = run
            save_segmentation(out / "adapter", run.model, config, run.history, encoder)
    assert deployed is not None
    # Held-out lesion predictions, bit-packed per slice: the evidence the stage-2 grounding guard checks against.
    lesion_slice_table(deployed.volumes.to_dict("records"), deployed.predicted).write_parquet(out / LESIONS_FILE)
    overlay = _segmentation_overlay(figures / "overlay.png", deployed)
    write_metrics(out, rows, {"centers": centers, "deployed": DEPLOYED})
    return dg.MaterializeResult(
        metadata={
            "centers": dg.MetadataValue.json(centers),
            "centers_left_out": dg.MetadataValue.json(left_out),
            "train_patients": train["patient"].nunique(),
            "test_patients": test["patient"].nunique(),
            "metrics": dg.MetadataValue.md(metrics_markdown(rows)),
            "overlay": png_metadata(overlay, "Held-out slice: truth (cyan) and prediction (red), deployed adapter"),
            **versioned(out, paths, dvc),
            **lineage(context, [mae_encoder.key, clinical_tables.key, lesion_masks.key, NORMALIZED_SLICES],
                      {v.name: dataclasses.asdict(seg_config(profile.profile, v, profile.seed)) for v in VARIANTS},
                      partitions=centers),
        }
    )


def _segmentation_overlay(path: Path, run: "SegRun") -> Path:
    """The held-out slice with the largest true lesion: image, truth (cyan) and prediction (red) outlines."""
    from matplotlib.figure import Figure

    best = max(range(len(run.truth)), key=lambda i: int((run.truth[i] > 0).sum()))
    k = int(np.argmax((run.truth[best] > 0).sum(axis=(1, 2))))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(4, 4), dpi=100)  # no pyplot: no global backend or figure registry
    ax = fig.subplots()
    ax.imshow(run.images[best][k], cmap="gray", vmin=0, vmax=255)
    for labels, colour in ((run.truth[best][k], "cyan"), (run.predicted[best][k], "red")):
        if (labels > 0).any():
            ax.contour(labels > 0, levels=[0.5], colors=colour, linewidths=1.0)
    ax.set_title(f"{run.volumes['sequence'][best]}, slice {k + 1} of {len(run.truth[best])}", fontsize=9)
    ax.set_axis_off()
    fig.savefig(path, bbox_inches="tight")
    return path


STUDY_ASSETS = {"classification": "cls_adapter", "grading": "grade_adapter", "prognosis": "prognosis_adapter"}


@dg.multi_asset(
    pool="gpu",
    specs=[
        dg.AssetSpec(
            "cls_adapter", deps=[mae_encoder, clinical_tables, lesion_masks], group_name="stage3",
            description="Study classification (category and subtype) from the slices of every sequence a study has "
            "(attention pooling per series, mean over series): probe, fine-tuned and scratch, against the "
            "most-frequent class; accuracy, macro-F1, AUC with 95 % CIs; Grad-CAM overlays and their pointing "
            "game and energy inside the lesion masks.",
        ),
        dg.AssetSpec(
            "grade_adapter", deps=[mae_encoder, clinical_tables], group_name="stage3",
            description="Ordinal grading (glioma WHO 2–4, meningioma WHO 1–2, pituitary micro/macro, subdural "
            "subacute/chronic; CORAL): probe, fine-tuned and scratch, against the most frequent grade; accuracy "
            "and quadratic-weighted kappa with 95 % CIs.",
        ),
        dg.AssetSpec(
            "prognosis_adapter", deps=[mae_encoder, clinical_tables], group_name="stage3",
            description="Prognosis from the study embedding and clinical variables: Cox head (Harrell's and Uno's "
            "C, time-dependent AUC) and two-year metastasis (AUC, Brier), against a clinical-variables-only model "
            "and, on a synthetic cohort, the generating oracle.",
        ),
    ],
    can_subset=False,
)
def study_adapters(
    context: dg.AssetExecutionContext,
    paths: PathsResource,
    profile: ProfileResource,
    device: DeviceResource,
    dvc: DvcResource,
) -> Iterator[dg.MaterializeResult]:
    from brainfm.evaluation import adapters as scoring
    from models.heads.experiments import STUDY_TASKS, VARIANTS, fit_study_task, make_encoder, study_config
    from models.heads.grading import GRADE_SCALES
    from models.heads.prognosis import ClinicalBaseline
    from models.heads.study_data import StudyBags
    from models.heads.study_train import save_study_adapter

    centers, left_out = cleared_centers(context, IMAGE_CHECKS)
    bags = StudyBags([paths.output("normalized_slices", c) for c in centers])
    table = study_table(paths.output("clinical_tables"))
    table = table[table["study"].isin(bags.studies)].reset_index(drop=True)
    train, test = _split(table)
    for task in STUDY_TASKS:
        name = STUDY_ASSETS[task]
        out = paths.output(name)
        rows: list[dict[str, object]] = []
        deployed = None
        for variant in VARIANTS:
            config = study_config(profile.profile, variant, profile.seed)
            encoder = make_encoder(variant.source, encoder_dir(paths), profile.seed, device.resolve())
            run = fit_study_task(task, encoder, bags, train, test, config, table, progress=True)
            scores = scoring.task_scores(task, run.predictions, train, GRADE_SCALES, seed=profile.seed)
            rows += metric_rows(variant.name, scores, run.predictions["patient"].nunique())
            if variant.name == DEPLOYED:
                deployed = run
                save_study_adapter(out / "adapter", run.encoder, run.head, config, run.history)
        assert deployed is not None
        held_out = deployed.predictions
        held_out.to_parquet(out / PREDICTIONS_FILE)  # pseudonymous keys only: read by the evaluation reports
        clinical = ClinicalBaseline.fit(train).predict(held_out) if task == "prognosis" else None
        oracle = read_oracle(paths.output("clinical_tables"))
        baselines = scoring.baseline_scores(task, train, held_out, GRADE_SCALES, clinical,
                                            None if oracle is None else oracle.to_pandas(), seed=profile.seed)
        for baseline, scores in baselines.items():
            rows += metric_rows(baseline, scores, held_out["patient"].nunique())
        meta: dict[str, object] = {}
        if task == "classification":
            meta |= _gradcam(deployed, paths, centers, held_out, profile.seed)
        write_metrics(out, rows, {"centers": centers, "deployed": DEPLOYED})
        context.log.info(f"{name}: {len(rows)} metric rows on {held_out['patient'].nunique()} held-out patients")
        yield dg.MaterializeResult(
            asset_key=name,
            metadata={
                "centers": dg.MetadataValue.json(centers),
                "centers_left_out": dg.MetadataValue.json(left_out),
                "train_studies": len(deployed.history) and len(train),
                "test_studies": len(held_out),
                "metrics": dg.MetadataValue.md(metrics_markdown(rows)),
                **meta,
                **versioned(out, paths, dvc),
                **lineage(context, [mae_encoder.key, clinical_tables.key, NORMALIZED_SLICES],
                          {v.name: dataclasses.asdict(study_config(profile.profile, v, profile.seed)) for v in VARIANTS},
                          partitions=centers),
            },
        )


def _gradcam(run, paths: PathsResource, centers: list[str], held_out: pd.DataFrame, seed: int) -> dict[str, object]:
    """Grad-CAM of the deployed classifier's true category on the held-out slices with a lesion: pointing game
    and energy inside the mask (95 % patient-bootstrap CIs), and an overlay of the largest lesion."""
    import torch

    from brainfm.evaluation import energy_inside_mask, patient_bootstrap, pointing_game
    from models.heads.gradcam import gradcam_maps, save_gradcam_overlay
    from models.heads.seg_data import SegmentationSlices

    data = SegmentationSlices(
        [paths.output("normalized_slices", c) for c in centers], [paths.output("lesion_masks", c) for c in centers],
        list(held_out["patient"].unique()),
    )
    keys = data.keys.reset_index(drop=True)
    categories = list(run.head.classes["category"])
    truth = held_out.set_index("study")["category"]
    images, masks = data[np.arange(len(data))]  # uint8 (N, 1, H, W), int64 labels (N, H, W)
    lesion = (masks > 0).reshape(len(masks), -1).sum(1)
    rows = np.flatnonzero(lesion >= 20)  # slices showing at least 20 lesion pixels
    rows = rows[:: max(1, len(rows) // MAX_GRADCAM_SLICES)]  # evenly spaced: one backward pass each
    if len(rows) == 0:
        return {"gradcam": "no held-out slice with a lesion mask"}

    def cam_of(r: int) -> np.ndarray:
        target = categories.index(truth[keys["study"][r]])
        return gradcam_maps(run.encoder, run.head, torch.from_numpy(images[r : r + 1]), target)[0].cpu().numpy()

    cams = {int(r): cam_of(int(r)) for r in rows}
    points = [pointing_game(cams[r], masks[r] > 0) for r in cams]
    energies = [energy_inside_mask(cams[r], masks[r] > 0) for r in cams]
    patients = keys["patient"].to_numpy()[rows]
    area = float(np.mean(lesion[rows] / masks[0].size))
    best = int(rows[np.argmax(lesion[rows])])
    png = save_gradcam_overlay(paths.outputs / "cls_adapter" / "gradcam.png", images[best, 0], cams[best],
                               masks[best], f"Grad-CAM, {truth[keys['study'][best]]} (lesion outlined)")
    mean = lambda x: float(np.nanmean(x))
    pointing = patient_bootstrap(mean, patients, np.asarray(points), seed=seed)
    energy = patient_bootstrap(mean, patients, np.asarray(energies), seed=seed)
    (paths.output("cls_adapter") / GRADCAM_FILE).write_text(json.dumps({
        "png": str(png), "caption": f"Grad-CAM of the true category ({truth[keys['study'][best]]}) on a held-out "
        "lesion slice, lesion outlined", "slices": len(rows), "lesion_area_share": area,
        "scores": {"pointing_game": dataclasses.asdict(pointing), "energy_inside_mask": dataclasses.asdict(energy)},
    }, indent=1))
    return {
        "gradcam_slices": len(rows),
        "gradcam_pointing_game": pointing.format(),
        "gradcam_energy_inside": energy.format(),
        "gradcam_lesion_area_share": round(area, 4),  # the energy a map uniform over the slice would score
        "gradcam_overlay": png_metadata(png, "Grad-CAM of the true category on a held-out lesion slice"),
    }


def adapter_gate(out: Path, metric: str, floor: float, baseline: str | None = None) -> Gate:
    """One row from an adapter's metrics.json: every reported value finite; the deployed variant's `metric`
    (higher is better) at least `floor`; and, when the held-out set has `MIN_PATIENTS_FOR_COMPARISON` patients
    (else the comparison is not meaningful), at least the `baseline` row's and above the scratch variant's."""
    rows = pd.DataFrame(json.loads((out / METRICS_FILE).read_text())["rows"])
    value = rows.set_index(["variant", "metric"])["value"]
    deployed = float(value.get((DEPLOYED, metric), np.nan))
    scratch = float(value.get(("scratch-finetune", metric), np.nan))
    meaningful = int(rows["n_patients"].max()) >= MIN_PATIENTS_FOR_COMPARISON
    frame = pd.DataFrame(
        [
            {
                "all_finite": bool(np.isfinite(rows[["value", "low", "high"]].to_numpy(float)).all()),
                "deployed": deployed,
                "above_floor": deployed - floor,
                "above_baseline": deployed - float(value.get((baseline, metric), np.nan))
                if baseline and meaningful else 0.0,
                "beats_scratch": bool(deployed > scratch) if meaningful else True,
            }
        ]
    )
    return Gate(
        frame,
        [
            gx.expectations.ExpectColumnValuesToBeInSet(column="all_finite", value_set=[True]),
            *(gx.expectations.ExpectColumnValuesToNotBeNull(column=c) for c in ("deployed", "above_baseline")),
            gx.expectations.ExpectColumnValuesToBeBetween(column="above_floor", min_value=0.0),
            gx.expectations.ExpectColumnValuesToBeBetween(column="above_baseline", min_value=0.0),
            gx.expectations.ExpectColumnValuesToBeInSet(column="beats_scratch", value_set=[True]),
        ],
    )


def _adapter_check(asset: str | dg.AssetsDefinition, metric: str, floor: float, baseline: str | None, what: str):
    key = asset if isinstance(asset, str) else asset.key.to_user_string()
    return gx_asset_check(
        asset=asset,
        name="learned_on_held_out",
        description=f"No metric is NaN or infinite; the deployed ({DEPLOYED}) {what} on held-out patients is "
        f"≥ {floor}; with ≥ {MIN_PATIENTS_FOR_COMPARISON} held-out patients also above the scratch network's"
        + (f" and ≥ the {baseline} baseline." if baseline else "."),
        gate=lambda context: adapter_gate(context.resources.paths.output(key), metric, floor, baseline),
        required_resource_keys={"paths"},
    )


seg_adapter_learned = _adapter_check(seg_adapter, "dice_whole", MIN_WHOLE_DICE, None, "whole-lesion Dice")
cls_adapter_learned = _adapter_check(
    "cls_adapter", "category_accuracy", MIN_CATEGORY_ACCURACY, "most-frequent", "category accuracy"
)
grade_adapter_learned = _adapter_check("grade_adapter", "grade_accuracy", MIN_GRADE_ACCURACY, None, "grade accuracy")
prognosis_adapter_learned = _adapter_check(
    "prognosis_adapter", "harrell_c", MIN_C_INDEX, None, "Harrell's C-index"
)
