"""mae_encoder's gate passes the summary of a run that learned and fails one that did not: NaN metrics (which a
GX range alone lets through), a non-finite or flat loss, too few held-out slices, no SSIM gain over the
baseline."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import great_expectations as gx

from assets.pretrain import MIN_LOSS_DROP, MIN_VAL_SLICES, SUMMARY_FILE, training_gate
from brainfm.validation import Gate
from models.validate import ReconstructionMetrics

from .conftest import failures

# The tiny demo's figures, with the SSIM gains an 80-step run reaches.
METRICS = ReconstructionMetrics(
    ssim=0.40, psnr_db=17.9, baseline_ssim=0.27, baseline_psnr_db=16.7, masked_ssim=0.24, masked_psnr_db=16.6,
    baseline_masked_ssim=0.08, baseline_masked_psnr_db=15.4, n_slices=32, mask_ratio=0.75,
)  # fmt: skip
LEARNING = [1.3 - 0.6 * step / 39 for step in range(40)]


def _summary(tmp_path: Path, history: list[float] = LEARNING, **metrics: Any) -> Path:
    """An encoder folder whose summary.json is what the asset writes, with `history` and `metrics` changed."""
    summary = {"history": history, "metrics": dataclasses.asdict(dataclasses.replace(METRICS, **metrics))}
    (tmp_path / SUMMARY_FILE).write_text(json.dumps(summary))  # NaN is written as NaN, as json.dumps does
    return tmp_path


def test_a_run_that_learned_passes(tmp_path: Path) -> None:
    assert failures(training_gate(_summary(tmp_path))) == set()


def test_a_nan_ssim_fails_though_a_gx_range_alone_passes_it(tmp_path: Path) -> None:
    gate = training_gate(_summary(tmp_path, ssim=math.nan))
    assert failures(gate) == {"expect_column_values_to_not_be_null(ssim_gain)"}
    range_only = [
        gx.expectations.ExpectColumnValuesToBeBetween(column="ssim_gain", min_value=0, strict_min=True)
    ]
    assert failures(Gate(gate.frame, range_only)) == set()


def test_a_non_finite_or_flat_loss_fails(tmp_path: Path) -> None:
    spiked = [*LEARNING[:20], math.inf, *LEARNING[21:]]
    assert failures(training_gate(_summary(tmp_path, spiked))) == {
        "expect_column_values_to_be_in_set(all_finite)"
    }
    barely = [1.0 - 0.05 * step / 39 for step in range(40)]  # falls by 4 %
    assert MIN_LOSS_DROP > 0.04
    assert failures(training_gate(_summary(tmp_path, barely))) == {
        "expect_column_values_to_be_between(loss_drop)"
    }
    assert failures(training_gate(_summary(tmp_path, []))) == {
        "expect_column_values_to_be_in_set(all_finite)",
        "expect_column_values_to_not_be_null(loss_drop)",
    }


def test_too_few_held_out_slices_fail(tmp_path: Path) -> None:
    assert failures(training_gate(_summary(tmp_path, n_slices=MIN_VAL_SLICES - 1))) == {
        "expect_column_values_to_be_between(val_slices)"
    }


def test_no_ssim_gain_over_the_baseline_fails(tmp_path: Path) -> None:
    assert failures(training_gate(_summary(tmp_path, ssim=METRICS.baseline_ssim))) == {
        "expect_column_values_to_be_between(ssim_gain)"
    }
    assert failures(training_gate(_summary(tmp_path, masked_ssim=0.07))) == {
        "expect_column_values_to_be_between(masked_ssim_gain)"
    }
