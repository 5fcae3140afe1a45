"""The bf16 path of `brainfm predict` (the default on the GPU and on CPUs with native bf16), run under CPU bfloat16
autocast so that CI covers it: every output is written and float32-convertible, and the predictions agree with full
precision; and which precision a device gets by default."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from brainfm.predict.run import Predictor, default_precision

from .conftest import Study


def test_bf16_predicts_what_fp32_does(
    models_dir: Path, study: Study, predicted: tuple[Path, dict], tmp_path: Path
) -> None:
    out_fp32, fp32 = predicted
    bf16 = Predictor(models_dir, "cpu", precision="bf16").predict(study.folder, tmp_path / "bf16")
    assert bf16["models"]["precision"] == "bf16" and fp32["models"]["precision"] == "fp32"
    assert sorted(p.name for p in (tmp_path / "bf16").iterdir()) == sorted(p.name for p in out_fp32.iterdir())
    for output, fp32_output in fp32["classification"].items():
        assert bf16["classification"][output]["label"] == fp32_output["label"]
        a, b = (np.array(list(r["classification"][output]["probabilities"].values())) for r in (bf16, fp32))
        assert np.abs(a - b).max() < 0.02  # bfloat16 keeps 8 bits of mantissa: about 2-3 significant digits
    assert bf16["prognosis"]["risk_log_hazard_ratio"] == pytest.approx(
        fp32["prognosis"]["risk_log_hazard_ratio"], abs=0.05
    )
    labels = [np.asarray(nib.load(out / "segmentation.nii.gz").dataobj) for out in (tmp_path / "bf16", out_fp32)]
    assert (labels[0] == labels[1]).mean() > 0.99  # the segmenter follows predict's precision too


def test_unknown_precision_is_refused(models_dir: Path) -> None:
    with pytest.raises(ValueError, match="choose one of fp32, bf16"):
        Predictor(models_dir, "cpu", precision="fp16")  # type: ignore[arg-type]


@pytest.mark.parametrize("native", [True, False])
def test_default_precision_is_bf16_where_the_hardware_has_it(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    for check in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        monkeypatch.setattr(torch.cpu, check, lambda: native)
    assert default_precision("cpu") == ("bf16" if native else "fp32")
    assert default_precision("cuda") == default_precision("cuda:1") == "bf16"
