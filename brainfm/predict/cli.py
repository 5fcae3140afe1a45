"""``brainfm predict STUDY_DIR --out OUT_DIR`` (or ``--batch ROOT``): the deployed models on a study export."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

BAD_INPUT = 2  # exit status of a study or option the user must fix


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict",
        help="classify, grade, segment and give the prognosis of one MR study (DICOM or NIfTI)",
        description="Ingest STUDY_DIR (one study: DICOM files in any layout, or NIfTI files directly in it) as the "
        "pipeline's ingest does and write into OUT_DIR: predictions.json (category and subtype with "
        "probabilities, grade, prognosis, lesion measurements, model versions, timings, warnings), the "
        "segmentation as NIfTI and DICOM SEG, a DICOM SR measurement report and overlay PNGs. OUT_DIR is replaced only once everything is written. The DICOM SEG "
        "and SR reference the original study's instances and identify the patient like the study itself: they "
        "go back to the hospital, never into data/. Files that cannot be read are listed; the study goes on "
        "with the rest. Exit status 2: the study or an option must be fixed (the message says how).",
    )
    p.add_argument("study_dir", nargs="?", type=Path, metavar="STUDY_DIR")
    p.add_argument(
        "--batch",
        type=Path,
        metavar="ROOT",
        help="predict every study folder directly under ROOT into OUT_DIR/<folder>/ (models loaded once)",
    )
    p.add_argument("--out", type=Path, required=True, metavar="OUT_DIR")
    p.add_argument(
        "--models",
        type=Path,
        default=None,
        metavar="MODELS_DIR",
        help="the pipeline's data folder holding mae_encoder/ and the *_adapter/ folders "
        "(default: $BRAINFM_ROOT/data, else the checkout's data/)",
    )
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when available")
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default=None,
        help="bf16: bfloat16 autocast (default on cuda and on CPUs with native bf16: AMX, AVX512-BF16); fp32: full precision",
    )
    p.add_argument(
        "--clinical",
        type=Path,
        metavar="FILE",
        help="JSON object of the prognosis head's clinical variables (age_years, sex M/F, kps, "
        "hypertension, diabetes, smoking); with --batch, one such object per study folder name",
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    # Imported here: the models' modules and highdicom load only when a prediction runs, not for `brainfm --help`.
    from brainfm.predict.run import (
        Predictor,
        default_device,
        default_models_dir,
        predict_batch,
        read_clinical,
    )
    from brainfm.predict.study import StudyError

    if (args.study_dir is None) == (args.batch is None):
        print("brainfm predict: give either STUDY_DIR or --batch ROOT", file=sys.stderr)
        return BAD_INPUT
    try:
        clinical = read_clinical(args.clinical) if args.clinical else None
        predictor = Predictor(args.models or default_models_dir(), args.device or default_device(), args.precision)
        if args.batch is not None:
            status = predict_batch(predictor, args.batch, args.out, clinical)
            failed = {k: v for k, v in status.items() if v != "ok"}
            for name, error in failed.items():
                print(f"brainfm predict: {name}: {error}", file=sys.stderr)
            print(f"predicted {len(status) - len(failed)} of {len(status)} studies into {args.out}")
            return BAD_INPUT if failed else 0
        result = predictor.predict(args.study_dir, args.out, clinical)
    except (StudyError, FileNotFoundError) as e:
        print(f"brainfm predict: {e}", file=sys.stderr)
        return BAD_INPUT
    category = result["classification"]["category"]
    print(
        f"{category['label']} (p={category['probabilities'][category['label']]:.2f}); outputs in {args.out}"
    )
    for warning in result["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    return 0
