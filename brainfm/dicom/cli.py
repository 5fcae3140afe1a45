"""``brainfm deid`` (de-identification only) and ``brainfm ingest`` (manifest, de-identification and
normalisation in one pass, the outputs of the Dagster ingest assets), for sites trying the pipeline without
Dagster."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from brainfm.ingest import DeidSummary, deidentify_center, ingest_center
from brainfm.pseudonym import Pseudonymizer
from brainfm.secrets import load_secret

_SECRET = "The secret key comes from BRAINFM_DEID_SECRET or BRAINFM_DEID_SECRET_FILE."
_QUARANTINE = (
    "Files that cannot be read or may show burned-in text are listed in Q/quarantine.jsonl (which names original "
    "paths and therefore never goes into OUTPUT_DIR)."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    deid = subparsers.add_parser(
        "deid",
        help="de-identify a folder of DICOM files (PS3.15 Annex E); bad files are quarantined",
        description="De-identify every DICOM file under INPUT_DIR into OUTPUT_DIR, named "
        f"<study>/<series>/<instance>.dcm by new UIDs. {_SECRET} {_QUARANTINE}",
    )
    deid.add_argument("input_dir", type=Path, metavar="INPUT_DIR")
    deid.set_defaults(func=_deid)
    ingest = subparsers.add_parser(
        "ingest",
        help="manifest, de-identification and 256×256 normalisation of one center folder, in one pass",
        description="Ingest the DICOM and NIfTI files under CENTER_DIR as the pipeline's ingest assets do: "
        "OUTPUT_DIR/dicom_manifest/manifest.parquet, OUTPUT_DIR/deidentified_studies/ and "
        f"OUTPUT_DIR/normalized_slices/ (shards, index.parquet, qc.parquet). {_SECRET} {_QUARANTINE}",
    )
    ingest.add_argument("input_dir", type=Path, metavar="CENTER_DIR")
    ingest.add_argument("--center", help="center id in keys and the index (default: CENTER_DIR's name)")
    ingest.add_argument("--seed", type=int, default=0, help="seed of the 8:2 patient split (default 0)")
    ingest.set_defaults(func=_ingest)
    for p in (deid, ingest):
        p.add_argument("output_dir", type=Path, metavar="OUTPUT_DIR")
        p.add_argument("--quarantine-dir", type=Path, default=None, metavar="Q",
                       help="folder for quarantine.jsonl (default: OUTPUT_DIR's sibling OUTPUT_DIR.quarantine)")
        p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")


def _quarantine_list(args: argparse.Namespace) -> Path:
    out: Path = args.output_dir
    return (args.quarantine_dir or out.with_name(out.name + ".quarantine")) / "quarantine.jsonl"


def _deid(args: argparse.Namespace) -> int:
    summary = deidentify_center(
        args.input_dir, args.output_dir, _quarantine_list(args), Pseudonymizer(load_secret()), args.workers
    )
    return _report(summary, args.output_dir)


def _ingest(args: argparse.Namespace) -> int:
    out: Path = args.output_dir
    center = args.center or args.input_dir.name
    summary = ingest_center(
        args.input_dir, out / "deidentified_studies", out / "normalized_slices", _quarantine_list(args), center,
        Pseudonymizer(load_secret()), workers=args.workers, seed=args.seed,
    )  # fmt: skip
    (out / "dicom_manifest").mkdir(parents=True, exist_ok=True)
    summary.manifest.write_parquet(out / "dicom_manifest" / "manifest.parquet")
    n = summary.normalize
    print(f"{summary.manifest.height} files in the manifest; normalised {n.slices} slices of {n.series} series, "
          f"excluded {n.excluded} ({', '.join(f'{k}={v}' for k, v in sorted(n.exclusion_reasons.items()))})")
    return _report(summary.deid, out)


def _report(summary: DeidSummary, out: Path) -> int:
    print(summary.line())
    if summary.identifier_hits:
        print(
            f"{summary.identifier_hits} exported file(s) still hold identifying values of their patient or site: do "
            f"not share {out}; find the attributes that carry them and extend the de-identification profile.",
            file=sys.stderr,
        )
        return 2
    return 0
