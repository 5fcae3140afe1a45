"""Latency of `brainfm predict` on one study, split by stage, with peak memory (issue 17).

It builds a MODELS_DIR of random-weight models laid out as the assets save them (encoder checkpoint, the
segmentation adapter, the three study adapters and, with ``--with-report``, the stage-2 report model) and one
synthetic study with four sequences (T1, T2, FLAIR, DWI) of 24 slices each (DWI: b = 0 and 1000, so 48
images), then runs :class:`brainfm.predict.run.Predictor` as ``brainfm predict`` does: the models are loaded
once, one cold predict follows, then ``--repeats`` warm ones. Latency does not depend on training, so the
weights are random; only the sizes (from ``--profile`` and ``--encoder-size``) matter. One exception, the
report: an untrained LM rarely emits its end token, so it generates the whole budget, ``--report-tokens``
(default predict's cap, ``REPORT_MAX_TOKENS``), where a trained one stops at the end of its report. With the cap
the report's time is an upper bound; with the length a trained model writes (about 120 tokens for the cohort's
reports, docs/BENCHMARKS.md) it is the expected time.

    .venv/bin/python bench/predict.py --profile tiny --repeats 3 --out tiny.json
    .venv/bin/python bench/predict.py --profile full --repeats 3 [--with-report] [--device cuda] [--precision bf16] --out full.json

Models and study are built in a child process, so that the peak RSS reported is that of the predicting
process alone (imports, loaded models, the predicts). Prints a Markdown table; ``--out`` also writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainfm.predict.run import (
    ENCODER_DIR,
    REPORT_MAX_TOKENS,
    REPORT_MODEL_DIR,
    SEGMENTATION_DIR,
    STUDY_ADAPTER_DIRS,
    Predictor,
)
from brainfm.synth.cohort import PatientTask, build_patient
from brainfm.synth.profiles import CATEGORY_OF, CENTERS, SUBTYPES

PROFILES = ("tiny", "small", "full")
# center_a (Siemens, classic single-frame DICOM, 192 px, DWI 128 px) with 24 slices per series instead of 22.
STUDY_CENTER = replace(CENTERS[0], n_slices=24)
STUDY_SUBTYPE = "glioma"  # a lesion, so segmentation outputs (NIfTI, DICOM SEG, SR) are all written
FORCED_LOGIT = 50.0  # added to the study's category and subtype logits: far above what a random head outputs
STAGES = ("ingest", "classification", "grading", "prognosis", "segmentation", "outputs", "gradcam", "report")
UNTIMED = "untimed (seg. overlay, JSON, folders)"
# Filler text for the report model's tokenizer: random CJK characters let byte-level BPE learn merges up to the
# profile's vocabulary size, so the LM's embedding and output layers have their deployed size.
FILLER_CHARS = 3_000  # distinct characters, from U+4E00
FILLER_LINES, FILLER_LINE_CHARS = 5_000, 200


def default_encoder_size(profile: str) -> str:
    """The encoder size a profile pretrains (`models.train.PretrainConfig.profile`)."""
    from models.train import PretrainConfig

    return PretrainConfig.profile(profile).model


def write_study(raw: Path, seed: int) -> tuple[Path, dict[str, Any]]:
    """One patient written by the synthetic cohort's own writer (:data:`STUDY_CENTER`, all four sequences);
    returns its study folder and the generator's record of it."""
    (raw / "masks").mkdir(parents=True, exist_ok=True)
    record = build_patient(PatientTask(seed, 1, STUDY_SUBTYPE, STUDY_CENTER, raw, burned_in=False))
    return raw / record["study_dir"], record


def build_models(
    root: Path, profile: str, encoder_size: str, record: dict[str, Any], with_report: bool, seed: int
) -> dict[str, int]:
    """MODELS_DIR under ``root`` as the assets lay it out, every model randomly initialised under ``seed`` at
    the sizes of ``profile`` (encoder: ``encoder_size``); adapters are probes (the deployed mode). The
    classification head is biased to the study's own category and subtype, so that grading runs; the
    prognosis head standardises with the study's own clinical values (mean = the values, scale 1). Returns
    the parameter count of the encoder and, with ``with_report``, of the report LM."""
    import torch
    from torch import nn

    from models.checkpoint import save_checkpoint
    from models.heads.classification import ClassificationHead
    from models.heads.experiments import build_head
    from models.heads.seg_train import SegConfig, save_segmentation
    from models.heads.segmentation import SegmentationModel
    from models.heads.study_train import StudyConfig, save_study_adapter
    from models.hybrid_encoder import create_encoder
    from models.train import PretrainConfig

    torch.manual_seed(seed)
    pretrain = PretrainConfig.profile(profile, model=encoder_size, seed=seed)
    encoder = create_encoder(encoder_size, pretrain.in_chans, pretrain.img_size).eval()
    save_checkpoint(root / ENCODER_DIR, nn.ModuleDict({"encoder": encoder}), pretrain.to_dict(), {})
    seg_config = SegConfig.profile(profile, seed=seed)
    segmenter = SegmentationModel(encoder, seg_config.n_classes, seg_config.width)
    save_segmentation(root / SEGMENTATION_DIR, segmenter, seg_config, [], encoder)
    classes = pd.DataFrame(SUBTYPES, columns=["category", "subtype", "frequency"])
    train = pd.DataFrame([{"study": "bench", **record["clinical"]}])
    for task, folder in STUDY_ADAPTER_DIRS.items():
        head = build_head(task, encoder.embed_dim, train, classes, seed)  # type: ignore[arg-type]
        if isinstance(head, ClassificationHead):
            # Grading runs only for a predicted subtype with a grade scale: predict the study's own (glioma).
            with torch.no_grad():
                for output, label in (("category", CATEGORY_OF[STUDY_SUBTYPE]), ("subtype", STUDY_SUBTYPE)):
                    head.logits[output].bias[head.classes[output].index(label)] += FORCED_LOGIT
        save_study_adapter(root / folder, encoder, head, StudyConfig.profile(profile, seed=seed))
    sizes = {"encoder": sum(p.numel() for p in encoder.parameters())}
    if with_report:
        sizes["language_model"] = build_report_model(root, profile, encoder, record["report"], seed)
    return sizes


def build_report_model(root: Path, profile: str, encoder: Any, report: str, seed: int) -> int:
    """The stage-2 model (resampler, projector and a `LMConfig.profile(profile)` LM, random weights; default
    resampler as the `aligned_vlm` asset builds it; LoRA adapters as `instructed_vlm` adds them, which predict
    merges at load) saved where predict looks; returns the LM's parameters."""
    from models.vlm.align_train import REPORT_PROMPT
    from models.vlm.instruct_train import InstructConfig, add_lora
    from models.vlm.language_model import LMConfig, build_language_model
    from models.vlm.tokenizer import train_tokenizer
    from models.vlm.visual import ResamplerSpec
    from models.vlm.vlm import build_vlm, save_vlm

    config = LMConfig.profile(profile, seed=seed)
    rng = np.random.default_rng(seed)
    chars = np.array([chr(0x4E00 + i) for i in range(FILLER_CHARS)])
    filler = ["".join(rng.choice(chars, FILLER_LINE_CHARS)) for _ in range(FILLER_LINES)]
    tokenizer = train_tokenizer([report, REPORT_PROMPT, *filler], config.vocab_size)
    lm = build_language_model(tokenizer, config)
    vlm = build_vlm(encoder, lm, tokenizer, ResamplerSpec(encoder_dim=encoder.embed_dim), seed=seed)
    parameters = sum(p.numel() for p in lm.parameters())
    add_lora(vlm, InstructConfig.profile(profile, seed=seed))
    save_vlm(root / REPORT_MODEL_DIR, vlm, root / ENCODER_DIR)
    return parameters


def build(
    work: Path, profile: str, encoder_size: str, with_report: bool, seed: int
) -> tuple[Path, Path, dict[str, Any], dict[str, int]]:
    """The study folder, MODELS_DIR, the study's clinical variables and the model sizes (run in a child)."""
    from models.heads.prognosis import CLINICAL_COVARIATES

    study_dir, record = write_study(work / "raw", seed)
    sizes = build_models(work / "models", profile, encoder_size, record, with_report, seed)
    clinical = {c: record["clinical"][c] for c in CLINICAL_COVARIATES}
    return study_dir, work / "models", clinical, sizes


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far, GB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def measure(
    models_dir: Path,
    study_dir: Path,
    clinical: dict[str, Any],
    device: str,
    repeats: int,
    out: Path,
    precision: str | None = None,
    report_tokens: int = REPORT_MAX_TOKENS,
) -> dict[str, Any]:
    """Load the models once, predict the study once cold and ``repeats`` times warm; seconds per stage and
    per predict (wall), and peak memory (GB)."""
    import torch

    predictor = Predictor(models_dir, device, precision, report_tokens)  # type: ignore[arg-type]
    rss_after_load = peak_rss_gb()
    runs = []
    for _ in range(1 + repeats):
        start = time.perf_counter()
        result = predictor.predict(study_dir, out, clinical)
        wall = time.perf_counter() - start
        stages = {s: result["timings_s"].get(s, 0.0) for s in STAGES}
        runs.append({"stages_s": stages, "untimed_s": wall - sum(stages.values()), "total_s": wall})
    report = result["report"]
    return {
        "load_models_s": predictor.load_seconds,
        "cold": runs[0],
        "warm": runs[1:],
        "series": result["study"]["series"],
        "report_chars": None if report is None else len(report["text"]),
        "peak_rss_gb": {"after_load": rss_after_load, "end": peak_rss_gb()},
        "cuda_max_allocated_gb": torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else None,
        "torch_threads": torch.get_num_threads(),
        "precision": predictor.precision,
        # what the last predict gave, to compare precisions between runs (the models' weights are seeded)
        "predictions": {k: result[k] for k in ("classification", "grade", "prognosis", "segmentation")},
    }


def markdown(result: dict[str, Any]) -> str:
    """The per-stage table (cold run, warm median and range) and the memory figures."""
    m, warm = result["measured"], result["measured"]["warm"]
    lines = ["| stage | cold (s) | warm median (s) | warm min–max (s) |", "|---|---|---|---|"]
    lines.append(f"| load models (once) | {m['load_models_s']:.2f} | | |")
    rows = [(s, "stages_s", s) for s in STAGES] + [
        (UNTIMED, "untimed_s", None),
        ("**total per study**", "total_s", None),
    ]
    for label, key, stage in rows:
        values = [r[key] if stage is None else r[key][stage] for r in warm]
        cold = m["cold"][key] if stage is None else m["cold"][key][stage]
        lines.append(
            f"| {label} | {cold:.2f} | {statistics.median(values):.2f} | {min(values):.2f}–{max(values):.2f} |"
        )
    rss = m["peak_rss_gb"]
    lines.append("")
    lines.append(
        f"Peak RSS: {rss['after_load']:.2f} GB after loading, {rss['end']:.2f} GB after all predicts."
    )
    if m["cuda_max_allocated_gb"] is not None:
        lines.append(f"Peak CUDA memory allocated: {m['cuda_max_allocated_gb']:.2f} GB.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        default="full",
        help="sizes of the adapters and the report LM; default full (the cluster-trained deployment)",
    )
    parser.add_argument(
        "--encoder-size",
        help="registered encoder size (models.registry.list_sizes()); default "
        "the one the profile pretrains: tiny → tiny, small → small, full → base",
    )
    parser.add_argument("--with-report", action="store_true", help="include the stage-2 report model")
    parser.add_argument("--repeats", type=int, default=3, help="warm predicts after the cold one")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--precision", choices=("fp32", "bf16"), help="default: brainfm predict's (bf16 on cuda and on CPUs with native bf16)")
    parser.add_argument(
        "--report-tokens", type=int, default=REPORT_MAX_TOKENS,
        help=f"tokens the report model generates (default predict's cap, {REPORT_MAX_TOKENS}; see above)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    from models.registry import list_sizes

    encoder_size = args.encoder_size or default_encoder_size(args.profile)
    if encoder_size not in list_sizes():
        parser.error(f"--encoder-size {encoder_size!r} is not registered; choose one of {list_sizes()}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1 (the warm median needs a warm run)")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        work = Path(tmp)
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            study_dir, models_dir, clinical, sizes = pool.submit(
                build, work, args.profile, encoder_size, args.with_report, args.seed
            ).result()
        measured = measure(
            models_dir, study_dir, clinical, args.device, args.repeats, work / "out", args.precision,
            args.report_tokens,
        )
    result = {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "processor": platform.processor()},
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "profile": args.profile, "encoder_size": encoder_size, "with_report": args.with_report,
        "device": args.device, "repeats": args.repeats, "seed": args.seed, "parameters": sizes,
        "report_tokens": args.report_tokens if args.with_report else None,
        "measured": measured,
    }  # fmt: skip
    series = ", ".join(f"{s['sequence']} {s['slices']}" for s in measured["series"])
    lm = f"{sizes['language_model'] / 1e6:.1f} M-parameter LM" if args.with_report else "none"
    print(f"profile {args.profile}, encoder {encoder_size} ({sizes['encoder'] / 1e6:.1f} M parameters), report "
          f"model: {lm}; device {args.device} ({measured['precision']}), {measured['torch_threads']} torch threads; slices kept: {series}")  # fmt: skip
    if measured["report_chars"] is not None:
        print(f"report: {measured['report_chars']} characters (budget {args.report_tokens} tokens)")
    print(f"load average (1/5/15 min) before {_loads(load_before)}, after {_loads(os.getloadavg())}\n")
    print(markdown(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")


def _loads(values: tuple[float, float, float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
