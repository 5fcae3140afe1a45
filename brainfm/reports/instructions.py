"""Stage-2 vision-language data from structured reports: image-report pairs and instruction records.

Every text comes from the de-identified sections and the structured fields, never from the raw report.
Each record carries ``image`` (the study key the image side joins on), ``patient`` (a pseudonym) and
``split``: patients are split 8:2 by :func:`brainfm.splits.split_patients`, so all studies of a patient
fall on one side. Instruction records hold a ``task`` and ``messages`` (a list of ``{"role", "content"}``,
two for single-turn tasks, more for ``dialogue``). Phrasings are drawn per study from a generator
seeded by (seed, study), so the output is deterministic under a seed and stable as studies are added.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any

from brainfm.splits import PRETRAIN_TRAIN_FRACTION, split_patients

TASKS = ("report_generation", "patient_explanation", "qa_location", "qa_size", "qa_category", "dialogue")

CATEGORY_ZH = {
    "tumor": "肿瘤性病变",
    "infection": "感染性病变",
    "cerebrovascular": "脑血管病",
    "trauma": "外伤性病变",
    "malformation": "发育畸形",
    "endocrine": "垂体（内分泌）病变",
    "hippocampal_sclerosis": "海马硬化",
    "normal": "未见明显异常",
}
# Plain-language wording for patients (no jargon, no certainty the report does not give).
CATEGORY_PLAIN = {
    "tumor": "一个需要进一步明确性质的肿块（肿瘤类病变）",
    "infection": "与感染或炎症有关的改变",
    "cerebrovascular": "与脑血管有关的改变（例如血管堵塞、出血或血管瘤）",
    "trauma": "与外伤有关的改变",
    "malformation": "先天发育方面的结构异常",
    "endocrine": "垂体（调节激素的腺体）区域的病变",
    "hippocampal_sclerosis": "海马（与记忆和癫痫有关的结构）的硬化改变",
}
SIDE_ZH = {"left": "左侧", "right": "右侧", "bilateral": "双侧", "midline": "中线区"}

_PROMPTS = {
    "report_generation": ("请根据这组脑部MRI图像书写影像报告，包括影像所见和诊断意见。", "请为该脑部MRI检查撰写一份放射学报告。", "描述这组头颅MRI的表现并给出诊断意见。"),
    "patient_explanation": ("请用通俗易懂的话向患者解释这次脑部MRI检查的结果。", "我不是医生，这份MRI报告是什么意思？", "请给患者简单说明一下检查发现了什么。"),
    "qa_location": ("病变位于哪个部位？", "这组图像中异常所在的位置是哪里？", "请指出病灶的解剖位置。"),
    "qa_size": ("病灶最大径约多少？", "最大的病灶有多大？", "请测量最大病灶的最大径。"),
    "qa_category": ("这组图像最可能属于哪一类疾病？", "请判断这次检查发现的疾病类别。", "该检查的主要诊断属于哪类病变？"),
}


def _report_text(r: Mapping[str, Any]) -> str:
    s = r["sections"]
    parts = [f"影像所见：{s['findings']}" if s["findings"] else "", f"诊断意见：{s['impression']}" if s["impression"] else ""]
    return "\n".join(p for p in parts if p)


def _where(r: Mapping[str, Any]) -> str:
    side = SIDE_ZH.get(r["laterality"] or "", "")
    side = "" if side == "中线区" else side
    return side + "、".join(r["locations"])


def _size(mm: float) -> str:
    return f"最大径约{mm:g} mm（{mm / 10:.1f} cm）"


def _answers(r: Mapping[str, Any]) -> dict[str, str]:
    """The answer of every task this study supports (no location question for a normal study, …)."""
    normal = r["categories"] == ["normal"]
    answers = {"report_generation": _report_text(r)}
    if normal:
        answers["patient_explanation"] = "这次脑部MRI检查没有发现明显异常。如仍有不适，请按医生建议复诊。"
        answers["qa_category"] = "未见明显异常。"
    else:
        plain = "；".join(CATEGORY_PLAIN[c] for c in r["categories"] if c in CATEGORY_PLAIN)
        where = f"在{_where(r)}" if r["locations"] else ""
        size = f"，{_size(r['largest_size_mm'])}" if r["largest_size_mm"] else ""
        answers["patient_explanation"] = (
            f"检查发现{where}有{plain}{size}。这些需要由您的主治医生结合症状和其他检查来判断和处理，请及时复诊。"
        )
        names = "、".join(CATEGORY_ZH[c] for c in r["categories"])
        impression = r["sections"]["impression"]
        answers["qa_category"] = f"{names}。" + (f"诊断意见：{impression}" if impression else "")
        if r["locations"]:
            answers["qa_location"] = f"病变位于{_where(r)}。"
    if r["largest_size_mm"]:
        answers["qa_size"] = f"{_size(r['largest_size_mm'])}。"
    return answers


def _messages(*turns: str) -> list[dict[str, str]]:
    return [{"role": ("user", "assistant")[i % 2], "content": t} for i, t in enumerate(turns)]


def build_instruction_data(
    records: Iterable[Mapping[str, Any]], seed: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Image-report pairs and instruction records from structured reports.

    Each record is a structured report (``StructuredReport.to_json()``) with ``id`` (the study key) and
    ``patient`` (the patient pseudonym, as written by ``structure_jsonl`` with a pseudonymizer).
    """
    records = list(records)
    missing = [i for i, r in enumerate(records) if not r.get("patient")]  # indices: a raw id is an identifier
    if missing:
        raise ValueError(
            f"{len(missing)} structured reports lack a 'patient' pseudonym (first: record {missing[0]}); "
            "structure them with a Pseudonymizer (structure_jsonl(..., pseudonymizer=...)) first."
        )
    sides = split_patients((r["patient"] for r in records), PRETRAIN_TRAIN_FRACTION, seed)
    pairs: list[dict[str, Any]] = []
    instructions: list[dict[str, Any]] = []
    for r in records:
        key = {"image": r["id"], "patient": r["patient"], "split": sides[r["patient"]]}
        report = _report_text(r)
        if not report:
            continue
        pairs.append({**key, "findings": r["sections"]["findings"], "impression": r["sections"]["impression"], "report": report})
        rng = random.Random(f"{seed}\x1f{r['id']}")
        answers = _answers(r)
        for task, answer in answers.items():
            messages = _messages(rng.choice(_PROMPTS[task]), answer)
            instructions.append({**key, "id": f"{r['id']}:{task}", "task": task, "messages": messages})
        turns = [rng.choice(_PROMPTS["report_generation"]), report]
        for task in ("qa_location", "qa_size", "qa_category"):
            if task in answers:
                turns += [rng.choice(_PROMPTS[task]), answers[task]]
        turns += [rng.choice(_PROMPTS["patient_explanation"]), answers["patient_explanation"]]
        instructions.append({**key, "id": f"{r['id']}:dialogue", "task": "dialogue", "messages": _messages(*turns)})
    return pairs, instructions
