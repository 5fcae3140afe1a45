"""Stage 1: MAE pretraining of the hybrid Transformer + ConvNeXt encoder on the normalised slices."""

# No `from __future__ import annotations` in asset modules: Dagster reads parameter annotations at runtime.

import dataclasses
import json
import math
import shutil

import dagster as dg
import great_expectations as gx
import pandas as pd

from assets.figures import png_metadata
from assets.gating import cleared_centers, gx_asset_check
from assets.ingest import normalized_format, normalized_qc_rate, normalized_slices, normalized_split
from assets.resources import DeviceResource, DvcResource, PathsResource, ProfileResource
from assets.versioning import versioned

SUMMARY_FILE = "summary.json"


@dg.asset(
    deps=[normalized_slices],
    group_name="stage1",
    description="Hybrid ViT + ConvNeXt encoder pretrained as a masked autoencoder (50–75% of patches masked, "
    "reconstruction + InfoNCE consistency); safetensors checkpoint, SSIM/PSNR on held-out patients.",
)
def mae_encoder(
    context: dg.AssetExecutionContext,
    paths: PathsResource,
    profile: ProfileResource,
    device: DeviceResource,
    dvc: DvcResource,
) -> dg.MaterializeResult:
    from models import PretrainConfig, pretrain  # torch loads only when this asset runs

    config = PretrainConfig.profile(profile.profile, seed=profile.seed)
    out = paths.output("mae_encoder")
    # Train into a staging folder that survives a crash (pretrain resumes from its checkpoint) and replace
    # the published encoder only when training and validation have finished.
    staging = out.with_name("mae_encoder.partial")
    centers, left_out = cleared_centers(context, [normalized_format, normalized_split, normalized_qc_rate])
    data = [paths.output("normalized_slices", c) for c in centers]
    result = pretrain(config, data, staging, device.resolve(), progress=True)
    summary = {
        "config": dataclasses.asdict(config),
        "history": result.history,
        "metrics": dataclasses.asdict(result.metrics),
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
    }
    (staging / SUMMARY_FILE).write_text(json.dumps(summary, indent=1, default=str))
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    m = result.metrics
    context.log.info(
        f"masked-region SSIM {m.masked_ssim:.3f} (baseline {m.baseline_masked_ssim:.3f}), PSNR {m.masked_psnr_db:.1f} dB "
        f"(baseline {m.baseline_masked_psnr_db:.1f}) after {result.steps} steps"
    )
    return dg.MaterializeResult(
        metadata={
            "model": config.model,
            "centers": dg.MetadataValue.json(centers),
            "centers_left_out": dg.MetadataValue.json(left_out),
            "steps": result.steps,
            "train_seconds": round(result.seconds, 1),
            "loss_first": result.history[0],
            "loss_last": result.history[-1],
            "val_ssim": m.ssim,
            "val_psnr_db": m.psnr_db,
            "baseline_ssim": m.baseline_ssim,
            "baseline_psnr_db": m.baseline_psnr_db,
            "val_masked_ssim": m.masked_ssim,
            "val_masked_psnr_db": m.masked_psnr_db,
            "baseline_masked_ssim": m.baseline_masked_ssim,
            "baseline_masked_psnr_db": m.baseline_masked_psnr_db,
            "val_slices": m.n_slices,
            "loss_curve": png_metadata(out / result.loss_curve_png.name, "Training loss per step"),
            "reconstruction": png_metadata(
                out / result.reconstruction_png.name, "Held-out slices: input, mask, reconstruction"
            ),
            **versioned(out, paths, dvc),
        }
    )


def _training_frame(context: dg.AssetCheckExecutionContext) -> pd.DataFrame:
    """One row: loss finiteness, mean loss over the first and last fifth of training, SSIM vs baseline over
    the whole image and over the masked pixels alone."""
    summary = json.loads((context.resources.paths.output("mae_encoder") / SUMMARY_FILE).read_text())
    history, metrics = summary["history"], summary["metrics"]
    fifth = max(len(history) // 5, 1)
    return pd.DataFrame(
        [
            {
                "all_finite": all(math.isfinite(x) for x in history),
                "loss_drop": sum(history[:fifth]) / fifth - sum(history[-fifth:]) / fifth,
                "ssim_gain": metrics["ssim"] - metrics["baseline_ssim"],
                "masked_ssim_gain": metrics["masked_ssim"] - metrics["baseline_masked_ssim"],
            }
        ]
    )


mae_encoder_learns = gx_asset_check(
    asset=mae_encoder,
    name="loss_falls_ssim_beats_baseline",
    description="The loss is finite and falls (last fifth below first fifth); held-out SSIM beats the "
    "masked-input baseline (masked patches filled with the visible mean), on the whole image and on the "
    "masked pixels alone.",
    frame=_training_frame,
    expectations=lambda: [
        gx.expectations.ExpectColumnValuesToBeInSet(column="all_finite", value_set=[True]),
        gx.expectations.ExpectColumnValuesToBeBetween(column="loss_drop", min_value=0, strict_min=True),
        gx.expectations.ExpectColumnValuesToBeBetween(column="ssim_gain", min_value=0, strict_min=True),
        gx.expectations.ExpectColumnValuesToBeBetween(column="masked_ssim_gain", min_value=0, strict_min=True),
    ],
    required_resource_keys={"paths"},
)
