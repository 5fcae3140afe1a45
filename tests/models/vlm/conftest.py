"""Vision-language fixtures: 20 single-sequence studies of MNI152 slices (`tests/models/conftest.py`) with
lesions drawn per subtype, one Chinese report per study (five subtypes, one of them rare), a byte-level BPE
tokenizer and a tiny Qwen2 LM pretrained on the reports, a tiny hybrid encoder and a feature cache shared by
every test (the encoder is frozen)."""

from __future__ import annotations

import copy
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach a model hub

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from models.data import write_shards
from models.heads.study_data import StudyBags
from models.hybrid_encoder import HybridEncoder, create_encoder
from models.vlm.align_train import REPORT_PROMPT
from models.vlm.language_model import LMConfig, build_language_model
from models.vlm.lm_train import train_language_model
from models.vlm.tokenizer import train_tokenizer
from models.vlm.visual import FeatureCache, ResamplerSpec
from models.vlm.vlm import BrainVLM, build_vlm
from tests.models.conftest import mni_slices

# subtype -> (findings, impression); {size} varies per study, so reports differ but the normal ones.
REPORTS = {
    "normal": ("脑实质内未见异常信号，脑室系统无扩大，中线结构居中。", "颅脑MRI平扫未见明显异常。"),
    "glioma": (
        "左侧额叶见团块状长T1长T2信号，边界不清，最大径约{size} mm，周围见水肿。",
        "左侧额叶占位，考虑胶质瘤。",
    ),
    "meningioma": ("右侧顶部颅板下见宽基底肿块，最大径约{size} mm，邻近脑组织受压。", "右侧顶部脑膜瘤可能。"),
    "hippocampal_sclerosis": ("左侧海马体积缩小，FLAIR信号增高，最大径约{size} mm。", "左侧海马硬化。"),
    "encephalitis": ("双侧颞叶内侧见片状FLAIR高信号，范围约{size} mm。", "考虑病毒性脑炎。"),
}


def report_text(findings: str, impression: str) -> str:
    return f"影像所见：{findings}\n诊断意见：{impression}"


N_STUDIES, SLICES = 20, 8
# subtype -> lesion discs (centre x, centre y, radius; px on the 256-px slice), bright on slices 2-5 of 8.
LESIONS = {
    "normal": (),
    "glioma": ((80, 90, 28),),
    "meningioma": ((176, 80, 24),),
    "hippocampal_sclerosis": ((100, 170, 14),),
    "encephalitis": ((90, 160, 18), (166, 160, 18)),
}


def subtype_of(index: int) -> str:
    """The subtype of the index-th study (studies sort as P000, P001, ...)."""
    return list(REPORTS)[index % len(REPORTS)]


@pytest.fixture(scope="session")
def study_bags(tmp_path_factory: pytest.TempPathFactory) -> StudyBags:
    """20 single-sequence (T1) studies of 8 MNI152 slices each (`mni_slices`), each with the discs of its
    subtype drawn in, so the images tell the reports apart."""
    slices, patients = mni_slices(n_patients=N_STUDIES, slices_per_patient=SLICES, seed=0)
    yy, xx = np.mgrid[:256, :256]
    for i in range(N_STUDIES):
        for x, y, r in LESIONS[subtype_of(i)]:
            slices[i * SLICES + 2 : i * SLICES + 6, (yy - y) ** 2 + (xx - x) ** 2 < r**2] = 250
    root = tmp_path_factory.mktemp("vl_slices")
    write_shards(root / "center_a", slices, [f"center_a-{p}" for p in patients], shard_size=64)
    return StudyBags(root)


@pytest.fixture(scope="session")
def pairs(study_bags: StudyBags) -> list[dict[str, Any]]:
    """One image-report pair per study (the `vl_pairs` record shape plus the study's `subtype`)."""
    out = []
    for i, study in enumerate(study_bags.studies):
        subtype = subtype_of(i)
        findings, impression = REPORTS[subtype]
        findings = findings.format(size=20 + i)
        out.append(
            {
                "image": study,
                "study": study,
                "patient": study_bags.patient(study),
                "split": "test" if i % 4 == 3 else "train",
                "findings": findings,
                "impression": impression,
                "report": report_text(findings, impression),
                "subtype": subtype,
            }
        )
    return out


@pytest.fixture(scope="session")
def instructions(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per study a report_generation, a qa_category and a two-question dialogue record."""
    out = []
    for p in pairs:
        key = {"image": p["image"], "patient": p["patient"], "split": p["split"]}
        answer = f"{p['impression']}"
        turns = {
            "report_generation": [REPORT_PROMPT, p["report"]],
            "qa_category": ["这组图像最可能属于哪一类疾病？", answer],
            "dialogue": [REPORT_PROMPT, p["report"], "这组图像最可能属于哪一类疾病？", answer],
        }
        for task, texts in turns.items():
            messages = [{"role": ("user", "assistant")[i % 2], "content": t} for i, t in enumerate(texts)]
            out.append({**key, "id": f"{p['image']}:{task}", "task": task, "messages": messages})
    return out


@pytest.fixture(scope="session")
def tokenizer(pairs: list[dict[str, Any]]) -> PreTrainedTokenizerFast:
    texts = [p["report"] for p in pairs] + [REPORT_PROMPT, "这组图像最可能属于哪一类疾病？"]
    return train_tokenizer(texts, vocab_size=600)


@pytest.fixture(scope="session")
def report_lm(tokenizer: PreTrainedTokenizerFast, pairs: list[dict[str, Any]]) -> PreTrainedModel:
    """The tiny Qwen2 LM pretrained on the training reports (as the pipeline does before stage 2): a random LM
    predicts every token at about log(vocabulary size), and visual tokens cannot steer it."""
    lm = build_language_model(tokenizer, LMConfig.profile("tiny"))
    train_language_model(
        lm,
        tokenizer,
        [p["report"] for p in pairs if p["split"] == "train"],
        LMConfig.profile("tiny", steps=60),
        progress=False,
    )
    return lm


@pytest.fixture(scope="session")
def encoder() -> HybridEncoder:
    torch.manual_seed(0)
    return create_encoder("tiny").eval()


@pytest.fixture(scope="session")
def resampler_spec(encoder: HybridEncoder) -> ResamplerSpec:
    """4 visual tokens of width 32 per study, from each slice's embedding and 2 x 2 regions."""
    return ResamplerSpec(
        encoder_dim=encoder.embed_dim, region_grid=2, width=32, n_queries=4, depth=1, heads=2
    )


@pytest.fixture(scope="session")
def cache(encoder: HybridEncoder, study_bags: StudyBags, resampler_spec: ResamplerSpec) -> FeatureCache:
    """Slice features of the shared frozen encoder, filled as the tests draw slices."""
    return FeatureCache(encoder, study_bags, resampler_spec.region_grid)


@pytest.fixture(scope="session")
def new_vlm(
    encoder: HybridEncoder,
    tokenizer: PreTrainedTokenizerFast,
    report_lm: PreTrainedModel,
    resampler_spec: ResamplerSpec,
) -> Callable[[], BrainVLM]:
    """Builds a VLM on the shared encoder and a copy of the pretrained LM, with a fresh resampler and
    projector (seed 0): the same weights on every call."""
    return lambda: build_vlm(encoder, copy.deepcopy(report_lm), tokenizer, resampler_spec)
