"""With a stage-2 model in MODELS_DIR, predict writes a generated report and grounds its findings against the
study's own classification and segmentation."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from brainfm.predict import run
from brainfm.predict.run import Predictor

from .conftest import Study

REPORTS = [
    "影像所见：左侧额叶见类圆形长T1长T2信号影，大小约25mm，边界清楚。\n诊断意见：左侧额叶占位，考虑胶质瘤。",
    "影像所见：脑实质内未见明显异常信号影，脑室系统未见扩张。\n诊断意见：颅脑MRI平扫未见明显异常。",
]


@pytest.fixture(scope="module")
def models_with_vlm(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models.checkpoint import load_encoder
    from models.vlm.align_train import REPORT_PROMPT
    from models.vlm.language_model import LMConfig, build_language_model
    from models.vlm.tokenizer import train_tokenizer
    from models.vlm.visual import ResamplerSpec
    from models.vlm.vlm import build_vlm, save_vlm

    root = tmp_path_factory.mktemp("with_vlm") / "models"
    shutil.copytree(models_dir, root)
    encoder_dir = root / run.ENCODER_DIR
    encoder = load_encoder(encoder_dir)
    tokenizer = train_tokenizer([*REPORTS, REPORT_PROMPT] * 4, vocab_size=400)
    lm = build_language_model(tokenizer, LMConfig.profile("tiny"))
    spec = ResamplerSpec(encoder_dim=encoder.embed_dim, width=32, n_queries=4, depth=1, heads=2)
    save_vlm(root / run.REPORT_MODEL_DIR, build_vlm(encoder, lm, tokenizer, spec), encoder_dir)
    return root


def test_the_report_is_generated_and_grounded(
    models_with_vlm: Path, study: Study, predicted: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In full precision, as the shared prediction without a report model: loading one changes no head's
    prediction. The report reads its slices' features from the heads' encoder pass: one fill of the report
    model's cache, and none from encoding (FeatureCache.features fills what it encodes)."""
    from models.vlm.visual import FeatureCache

    filled, fill = [], FeatureCache.fill
    monkeypatch.setattr(FeatureCache, "fill", lambda self, items, *a: (filled.append(len(items)), fill(self, items, *a)))
    result = Predictor(models_with_vlm, "cpu", precision="fp32").predict(study.folder, tmp_path / "out")
    assert filled == [run.REPORT_SLICES * len(result["study"]["series"])]
    _, without = predicted
    for task in ("classification", "grade", "prognosis"):
        assert result[task] == without[task], task
    report = result["report"]
    assert isinstance(report["text"], str) and report["model"] == run.REPORT_MODEL_DIR
    assert isinstance(report["grounding"], list) and isinstance(report["flags"], list)
    assert all(v["verdict"] in {"supported", "unsupported", "unverifiable"} for v in report["grounding"])
    assert run.REPORT_MODEL_DIR in result["models"]["md5"] and "report" in result["timings_s"]


def test_the_report_budget_is_what_the_model_may_generate(
    models_with_vlm: Path, study: Study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``report_tokens`` is the report model's generation budget (bench/predict.py's stand-in for a trained
    model's length); by default predict's cap."""
    from models.vlm.vlm import BrainVLM

    budgets, generate = [], BrainVLM.generate
    monkeypatch.setattr(BrainVLM, "generate", lambda self, v, p, n: (budgets.append(n), generate(self, v, p, n))[1])
    Predictor(models_with_vlm, "cpu", precision="fp32", report_tokens=3).predict(study.folder, tmp_path / "out")
    assert budgets == [3] and Predictor.__init__.__defaults__[-1] == run.REPORT_MAX_TOKENS
