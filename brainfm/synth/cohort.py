"""Generate the synthetic multi-center cohort: DICOM, masks, reports, tables and manifest.json.

Layout and formats: docs/DATA_CONTRACT.md section 1. Everything is drawn from ``seed``: cohort-level
choices from ``default_rng([seed, stream])`` and each patient from ``default_rng([seed, index])``, so
patients can be generated in any order, in parallel, with identical bytes.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import polars as pl
from scipy import ndimage
from tqdm import tqdm

from brainfm import __version__
from brainfm.raw_layout import RawLayout
from brainfm.synth.anatomy import SubjectGeometry, draw_geometry, load_template
from brainfm.synth.badfiles import plant_bad_files
from brainfm.synth.centers import AcquisitionGrid, make_grids
from brainfm.synth.clinical import HazardModel, draw_clinical, draw_outcomes, oracle_scores
from brainfm.synth.dicom_writer import SeriesInfo, StudyInfo, burn_in, uid, write_series
from brainfm.synth.identities import PatientIdentity, draw_identity
from brainfm.synth.lesions import Lesion, build_lesion
from brainfm.synth.profiles import (
    CATEGORY_OF,
    RARE_SUBTYPES,
    SEQUENCES,
    SUBTYPES,
    CenterSpec,
    SynthProfile,
    get_profile,
)
from brainfm.synth.reader_study import Case, add_prognosis, simulate_reader_study, simulate_trial
from brainfm.synth.render import RenderedStudy, render_study
from brainfm.synth.reports import ReportFacts, write_report
from brainfm.synth.sequences import protocol

GENERATOR_VERSION = f"{__version__}+synth.1"
STREAM_PLAN, STREAM_OUTCOMES, STREAM_READERS, STREAM_TRIAL = 1_000_001, 1_000_002, 1_000_003, 1_000_004
BURNED_IN_SEQUENCE = "T2"
STAGING_SUFFIX = ".partial"


@dataclass(frozen=True)
class CohortSummary:
    """What ``generate_cohort`` wrote (counts) and how long it took (wall seconds)."""

    out_dir: Path
    profile: str
    seed: int
    n_patients: int
    n_studies: int
    n_series: int
    n_dicom_files: int
    n_frames: int  # image slices written (a multi-frame file counts each frame)
    categories: dict[str, int]
    seconds: float


def allocate_subtypes(n: int) -> list[str]:
    """Subtype counts by largest remainder on the frequencies, at least one of each (deterministic).

    With fewer patients than subtypes, the ``n`` most frequent subtypes get one patient each.
    """
    weights = np.array([w for _, _, w in SUBTYPES])
    names = [s for _, s, _ in SUBTYPES]
    if n < len(names):
        return [names[i] for i in sorted(np.argsort(-weights, kind="stable")[:n])]
    quota = weights / weights.sum() * n
    counts = np.maximum(np.floor(quota).astype(int), 1)
    order = np.argsort(-(quota - np.floor(quota)), kind="stable")
    for i in range(n - counts.sum()):
        counts[order[i % len(order)]] += 1
    while counts.sum() > n:
        counts[int(np.argmax(counts))] -= 1
    return [name for name, c in zip(names, counts, strict=True) for _ in range(c)]


@dataclass(frozen=True)
class PatientTask:
    seed: int
    index: int
    subtype: str
    center: CenterSpec
    out_dir: Path
    burned_in: bool


def plan_cohort(profile: SynthProfile, seed: int, out_dir: Path) -> list[PatientTask]:
    """Subtype and center of each patient: centers round-robin, subtypes shuffled over patients.

    The second patient of the first center carries the burned-in-annotation series.
    """
    rng = np.random.default_rng([seed, STREAM_PLAN])
    subtypes = list(rng.permutation(allocate_subtypes(profile.n_patients)))
    centers = profile.centers
    burned = len(centers)  # patient index of the 2nd patient of centers[0]
    return [
        PatientTask(seed, i, str(s), centers[i % len(centers)], out_dir, i == burned)
        for i, s in enumerate(subtypes)
    ]


def _lesion_size_mm(mask: np.ndarray, grid: AcquisitionGrid) -> tuple[float, float] | None:
    """Two in-plane dimensions (mm) of the largest connected lesion (labels 1 and 3: oedema excluded),
    measured on the axial slice where it is largest, as radiologists report."""
    core = np.isin(mask, [1, 3])
    labelled, n = ndimage.label(core)
    if n == 0:
        return None
    largest = labelled == (1 + int(np.argmax(ndimage.sum(core, labelled, range(1, n + 1)))))
    k = int(np.argmax(largest.sum(axis=(1, 2))))
    rows, cols = np.nonzero(largest[k])
    dims = sorted([(np.ptp(rows) + 1) * grid.pixel_mm, (np.ptp(cols) + 1) * grid.pixel_mm], reverse=True)
    return round(float(dims[0]), 1), round(float(dims[1]), 1)


def _dir_names(task: PatientTask, ident: PatientIdentity) -> tuple[str, str]:
    """Patient and study folder names as this center's PACS exports them (identifiers included)."""
    pinyin = ident.person.pinyin.replace(" ", "_")
    patient = {
        "siemens": f"{pinyin}_{ident.patient_id}",
        "ge": ident.patient_id,
        "philips": f"{ident.person.family_pinyin.upper()}^{ident.person.given_pinyin.upper()}",
        "uih": f"{ident.person.hanzi}_{ident.patient_id}",
    }[task.center.vendor]
    return patient, f"{ident.study_date:%Y%m%d}_{ident.accession}"


@dataclass(frozen=True)
class SimulatedPatient:
    """Everything drawn for one patient before anything is written."""

    lesion: Lesion
    clinical: dict[str, object]
    geometry: SubjectGeometry
    identity: PatientIdentity
    grids: dict[str, AcquisitionGrid]
    rendered: RenderedStudy
    rng: np.random.Generator  # continues the patient's stream (series scaling, report wording)


def simulate_patient(task: PatientTask) -> SimulatedPatient:
    """Draw and render one patient from ``default_rng([seed, index])`` (pure: writes nothing)."""
    template = load_template()
    rng = np.random.default_rng([task.seed, task.index])
    center = task.center
    lesion = build_lesion(task.subtype, template, rng)
    clinical = draw_clinical(task.subtype, lesion.grade, rng)
    geometry = draw_geometry(rng, clinical["age_years"])
    ident = draw_identity(rng, center.center_id[-1], task.index, center.phone_prefix, clinical["age_years"])
    grids = make_grids(center, geometry, rng)
    rendered = render_study(template, geometry, lesion, center, grids, rng)
    return SimulatedPatient(lesion, clinical, geometry, ident, grids, rendered, rng)


def build_patient(task: PatientTask) -> dict[str, object]:
    """Render, write and describe one patient (one study); returns a JSON-safe record."""
    sim = simulate_patient(task)
    lesion, clinical, geometry, ident, grids, rendered, rng = (
        sim.lesion,
        sim.clinical,
        sim.geometry,
        sim.identity,
        sim.grids,
        sim.rendered,
        sim.rng,
    )
    center = task.center

    patient_dir, study_dir = _dir_names(task, ident)
    study_rel = Path("dicom") / center.center_id / patient_dir / study_dir
    study_uid = uid(task.seed, ident.accession, "study")
    study = StudyInfo(
        task.seed,
        center,
        ident,
        clinical["sex"],
        clinical["age_years"],
        study_uid,
        uid(task.seed, ident.accession, "frame_of_reference"),
        clinical["symptoms"],
    )
    series_records = []
    for number, seq in enumerate(SEQUENCES, start=2):
        proto = protocol(seq, center.te_scale, center.ti_flair_ms)
        burned = task.burned_in and seq == BURNED_IN_SEQUENCE
        info = SeriesInfo(seq, proto, number, uid(task.seed, ident.accession, seq), lesion.contrast, burned)
        images = rendered.images[seq]
        if burned:
            text = f"{ident.person.pinyin} {ident.patient_id} {ident.study_date:%Y-%m-%d}"
            images = {b: burn_in(v, text) for b, v in images.items()}
        slope = float(np.round(rng.uniform(1.2, 2.4), 4)) if center.vendor == "philips" else 1.0
        series_rel = study_rel / f"S{number:03d}"
        grid = grids["dwi" if seq == "DWI" else "main"]
        paths = write_series(task.out_dir / series_rel, study, info, images, grid, slope)
        series_records.append(
            {
                "sequence": seq,
                "series_uid": info.series_uid,
                "series_number": number,
                "dir": series_rel.as_posix(),
                "files": [p.name for p in paths],
                "n_frames": int(sum(v.shape[0] for v in images.values())),
                "b_values": list(proto.b_values),
                "matrix": grid.shape[1],
                "burned_in": burned,
                "enhanced": center.special(seq) == "enhanced",
                "transfer_syntax": "1.2.840.10008.1.2.4.90"
                if center.special(seq) == "jpeg2000"
                else str(center.transfer_syntax),
            }
        )

    size = (
        _lesion_size_mm(rendered.lesion_mask, grids["main"]) if lesion.sized and lesion.components else None
    )
    mask_rel = None
    if lesion.components and rendered.lesion_mask.any():
        mask_rel = f"masks/{ident.accession}.nii.gz"
        image = nib.Nifti1Image(rendered.lesion_mask.transpose(2, 1, 0), grids["main"].affine_ras)
        image.header.set_data_dtype(np.uint8)
        image.header.set_xyzt_units("mm")
        nib.save(image, task.out_dir / mask_rel)
    largest = lesion.reported_size_mm or (size[0] if size else None)
    facts = ReportFacts(
        lesion.subtype,
        lesion.laterality,
        lesion.locations,
        lesion.grade,
        (lesion.reported_size_mm, lesion.reported_size_mm) if lesion.reported_size_mm else size,
        lesion.n_lesions,
        lesion.contrast,
        geometry.atrophy > 0.5,
        clinical["sex"],
        clinical["age_years"],
    )
    report = write_report(facts, ident, center.center_id, center.institution, rng)
    return {
        "index": task.index,
        "patient_id": ident.patient_id,
        "accession": ident.accession,
        "study_uid": study_uid,
        "center": center.center_id,
        "category": CATEGORY_OF[lesion.subtype],
        "subtype": lesion.subtype,
        "grade": lesion.grade,
        "laterality": lesion.laterality,
        "locations": list(lesion.locations),
        "largest_size_mm": largest,
        "n_lesions": lesion.n_lesions if lesion.components else 0,
        "contrast": lesion.contrast,
        "mask": mask_rel,
        "clinical": clinical,
        "identifiers": ident.strings() | {"folder_name": [patient_dir]},
        "report": report,
        "study_dir": study_rel.as_posix(),
        "series": series_records,
        "atrophy": round(geometry.atrophy, 4),
    }


def _run(tasks: list[PatientTask], workers: int) -> Iterator[dict[str, object]]:
    bar = {"total": len(tasks), "desc": "synth patients", "unit": "patient"}
    if workers <= 1:
        yield from tqdm(map(build_patient, tasks), **bar)
        return
    load_template()  # load once in the parent; forked workers inherit the cache
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        yield from tqdm(pool.map(build_patient, tasks, chunksize=1), **bar)


def _write_tables(out_dir: Path, records: list[dict], profile: SynthProfile, seed: int) -> dict[str, object]:
    """clinical, outcomes, labels, reader_study and controlled_trial parquet files; returns the oracle."""
    tables = RawLayout(out_dir).tables
    tables.mkdir(parents=True, exist_ok=True)
    clinical = pl.DataFrame(
        [{"patient_id": r["patient_id"], "center": r["center"]} | r["clinical"] for r in records]
    )
    clinical.write_parquet(tables / "clinical.parquet")
    model = HazardModel()
    outcomes = draw_outcomes(
        model,
        [r["subtype"] for r in records],
        [r["grade"] for r in records],
        [float(r["largest_size_mm"] or 0.0) for r in records],
        [r["clinical"]["age_years"] for r in records],
        [r["clinical"]["kps"] for r in records],
        np.random.default_rng([seed, STREAM_OUTCOMES]),
    )
    pl.DataFrame(
        {
            "patient_id": [r["patient_id"] for r in records],
            "metastasis": outcomes.metastasis,
            "survival_months": outcomes.survival_months,
            "event": outcomes.event,
        }
    ).write_parquet(tables / "outcomes.parquet")
    # The generating truth, kept apart so that no model trained on outcomes.parquet can see it.
    pl.DataFrame(
        {
            "patient_id": [r["patient_id"] for r in records],
            "true_linear_predictor": np.round(outcomes.lp, 6),
            "true_metastasis_probability": np.round(outcomes.p_metastasis, 6),
        }
    ).write_parquet(tables / "oracle.parquet")
    label_cols = (
        "patient_id",
        "accession",
        "study_uid",
        "center",
        "category",
        "subtype",
        "grade",
        "laterality",
        "locations",
        "largest_size_mm",
        "n_lesions",
        "contrast",
        "mask",
    )
    labels = pl.DataFrame(
        [{k: r[k] for k in label_cols} | {"rare": r["subtype"] in RARE_SUBTYPES} for r in records],
        schema_overrides={
            "largest_size_mm": pl.Float64,
            "grade": pl.String,
            "mask": pl.String,
            "locations": pl.List(pl.String),
        },
    )
    labels.write_parquet(tables / "labels.parquet")
    cases = [
        Case(r["accession"], r["patient_id"], r["center"], r["subtype"], r["largest_size_mm"])
        for r in records
    ]
    subtypes = [s for _, s, _ in SUBTYPES]
    reads = simulate_reader_study(cases, subtypes, np.random.default_rng([seed, STREAM_READERS]))
    pl.DataFrame(reads, infer_schema_length=None).write_parquet(tables / "reader_study.parquet")
    trial_rng = np.random.default_rng([seed, STREAM_TRIAL])
    trial = simulate_trial(cases, subtypes, profile.n_trial_participants, trial_rng)
    trial = add_prognosis(trial, [r["patient_id"] for r in records], outcomes, model, trial_rng)
    pl.DataFrame(trial, infer_schema_length=None).write_parquet(tables / "controlled_trial.parquet")
    return {"hazard_model": model.describe(), "oracle": oracle_scores(outcomes)}


def _write_reports(out_dir: Path, records: list[dict]) -> None:
    reports = RawLayout(out_dir).reports
    reports.mkdir(parents=True, exist_ok=True)
    by_center: dict[str, list[str]] = {}
    for r in records:
        line = {
            "id": r["accession"],
            "patient_id": r["patient_id"],
            "center": r["center"],
            "text": r["report"],
        }
        by_center.setdefault(r["center"], []).append(json.dumps(line, ensure_ascii=False))
    for center, lines in by_center.items():
        (reports / f"{center}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _identifiers(records: list[dict], centers: tuple[CenterSpec, ...]) -> dict[str, list[str]]:
    kinds: dict[str, set[str]] = {"institution": set()}
    for c in centers:
        kinds["institution"] |= {c.institution, c.address}
    for r in records:
        for kind, values in r["identifiers"].items():
            kinds.setdefault(kind, set()).update(values)
    return {k: sorted(v) for k, v in sorted(kinds.items())}


def _staging_dir(out_dir: Path) -> Path:
    """The sibling folder a cohort is written into; a leftover of an interrupted run is deleted, a folder
    holding anything a cohort does not is refused."""
    staging = out_dir.with_name(out_dir.name + STAGING_SUFFIX)
    if staging.exists():
        layout = RawLayout(staging)
        ours = {p.name for p in (layout.dicom, layout.reports, layout.tables, layout.masks, layout.manifest)}
        if any(p.name not in ours for p in staging.iterdir()):
            raise FileExistsError(f"{staging} holds files this generator did not write; move or delete it.")
        shutil.rmtree(staging)
    return staging


def generate_cohort(
    out_dir: Path, profile: str = "tiny", seed: int = 0, workers: int = 1, n_patients: int | None = None
) -> CohortSummary:
    """Write the synthetic raw cohort into ``out_dir`` (which must be empty or absent).

    The cohort is written into the sibling ``<out_dir>.partial`` and renamed into place when complete, so an
    interrupted run leaves no partial cohort at ``out_dir``; the next run deletes that leftover.
    ``n_patients`` overrides the profile's patient count (tests use a reduced ``tiny``).
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(
            f"{out_dir} is not empty; choose a new --out directory or delete this one first."
        )
    prof = get_profile(profile, n_patients)
    staging = _staging_dir(out_dir)
    RawLayout(staging).masks.mkdir(parents=True)
    tasks = plan_cohort(prof, seed, staging)
    records = sorted(_run(tasks, workers), key=lambda r: r["index"])
    _write_reports(staging, records)
    modelled = _write_tables(staging, records, prof, seed)
    bad_files = plant_bad_files(staging, records)
    n_files = sum(len(s["files"]) for r in records for s in r["series"])
    n_frames = sum(s["n_frames"] for r in records for s in r["series"])
    manifest = {
        "profile": prof.name,
        "seed": seed,
        "generator_version": GENERATOR_VERSION,
        "simulated": True,
        "centers": {c.center_id: c.effects() for c in prof.centers},
        "n_patients": len(records),
        "n_studies": len(records),
        "n_series": sum(len(r["series"]) for r in records),
        "n_dicom_files": n_files,
        "n_frames": n_frames,
        "categories": dict(sorted(Counter(r["category"] for r in records).items())),
        "subtypes": dict(sorted(Counter(r["subtype"] for r in records).items())),
        "rare_subtypes": sorted(RARE_SUBTYPES),
        "mask_labels": {"1": "lesion", "2": "perilesional oedema", "3": "necrosis or pus"},
        "identifiers": _identifiers(records, prof.centers),
        "bad_files": bad_files,
        "burned_in": [s["dir"] for r in records for s in r["series"] if s["burned_in"]],
        **modelled,
        "tables": {
            "clinical": "tables/clinical.parquet",
            "outcomes": "tables/outcomes.parquet",
            "labels": "tables/labels.parquet",
            "reader_study": "tables/reader_study.parquet",
            "controlled_trial": "tables/controlled_trial.parquet",
            "oracle": "tables/oracle.parquet",
        },
        "simulated_tables": ["reader_study", "controlled_trial"],
        "studies": {
            r["accession"]: {
                k: r[k]
                for k in (
                    "patient_id",
                    "center",
                    "study_uid",
                    "study_dir",
                    "subtype",
                    "mask",
                    "atrophy",
                    "series",
                )
            }
            for r in records
        },
    }
    RawLayout(staging).manifest.write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    staging.replace(out_dir)  # atomic; replaces an empty out_dir (POSIX)
    return CohortSummary(
        out_dir,
        prof.name,
        seed,
        len(records),
        len(records),
        manifest["n_series"],
        n_files,
        n_frames,
        manifest["categories"],
        round(time.perf_counter() - start, 2),
    )
