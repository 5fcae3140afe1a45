"""Chinese free-text radiology reports written from the planted ground truth.

Six template families (section headings 影像所见/检查所见/MRI所见/影像表现 and 诊断意见/印象/结论/
影像学诊断, 【】 headings, numbered lists, running text); each center prefers some families and its own
size format (cm or mm). Findings state laterality, sites, size and per-sequence signal; normal structures
are stated with negations (未见, 无); conclusions hedge (考虑, 可能, 不除外). The header and footer carry
identifiers (name, ID, accession, phone, hospital, dates, physicians), as real reports do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainfm.synth.identities import PatientIdentity
from brainfm.synth.lesions import SITES

SIDE_ZH = {"left": "左侧", "right": "右侧", "bilateral": "双侧", "midline": "", "none": ""}

# Per-sequence signal as a radiologist words it, per subtype (T1WI, T2WI, FLAIR, DWI).
SIGNALS: dict[str, tuple[str, str, str, str]] = {
    "glioma": ("稍低信号", "高信号", "高信号", "稍高信号"),
    "meningioma": ("等信号", "等或稍高信号", "稍高信号", "等信号"),
    "metastasis": ("稍低信号", "稍高信号", "高信号", "等或稍高信号"),
    "abscess": ("低信号", "高信号", "高信号", "中心明显高信号（弥散受限）"),
    "encephalitis": ("稍低信号", "高信号", "高信号", "稍高信号"),
    "infarct": ("稍低信号", "稍高信号", "高信号", "明显高信号，ADC值减低"),
    "hemorrhage": ("高信号", "低信号", "混杂信号", "低信号"),
    "contusion": ("混杂高信号", "混杂信号", "高信号", "混杂信号"),
    "subdural_hematoma": ("高信号", "高信号", "高信号", "混杂信号"),
    "cavernous_malformation": (
        "混杂信号",
        "中心混杂高信号伴周围低信号环（“爆米花”样）",
        "混杂信号",
        "低信号",
    ),
    "chiari": ("等信号", "等信号", "等信号", "等信号"),
    "pituitary_adenoma": ("等信号", "稍高信号", "稍高信号", "等信号"),
    "hippocampal_sclerosis": ("稍低信号", "稍高信号", "高信号", "等信号"),
}
SHAPES = {
    "glioma": "团块状",
    "meningioma": "半圆形",
    "metastasis": "结节状",
    "abscess": "类圆形环形",
    "encephalitis": "片状",
    "infarct": "楔形片状",
    "hemorrhage": "类圆形",
    "contusion": "斑片状",
    "subdural_hematoma": "新月形",
    "cavernous_malformation": "类圆形",
    "chiari": "",
    "pituitary_adenoma": "类圆形",
    "hippocampal_sclerosis": "",
}
DIAGNOSES = {
    "glioma": "{loc}占位性病变，考虑胶质瘤{grade_hint}",
    "meningioma": "{loc}脑外占位，考虑脑膜瘤",
    "metastasis": "颅内{multi}异常强化结节，考虑转移瘤，请结合临床病史",
    "abscess": "{loc}环形强化病灶伴弥散受限，考虑脑脓肿",
    "encephalitis": "{loc}异常信号，考虑病毒性脑炎（单纯疱疹病毒性脑炎可能）",
    "infarct": "{loc}急性脑梗死",
    "hemorrhage": "{loc}脑出血（亚急性期）",
    "contusion": "{loc}脑挫裂伤",
    "subdural_hematoma": "{side}额颞顶部硬膜下血肿（{stage}）",
    "cavernous_malformation": "{loc}异常信号，考虑海绵状血管瘤，不除外小出血灶",
    "chiari": "小脑扁桃体下疝畸形（Chiari I型）",
    "pituitary_adenoma": "鞍区占位，考虑垂体{size_class}",
    "hippocampal_sclerosis": "{side}海马萎缩伴FLAIR信号增高，考虑海马硬化可能",
    "normal": "头颅MRI{scan}未见明显异常",
}
NORMAL_SENTENCES = (
    ("ventricles", "脑室系统未见扩张，中线结构居中。"),
    ("sulci", "脑沟、脑裂未见增宽。"),
    ("enhancement", "增强扫描未见异常强化。"),
    ("hippocampus", "双侧海马形态、信号未见明显异常。"),
    ("sella", "鞍区未见异常信号，垂体形态如常。"),
    ("posterior_fossa", "小脑、脑干未见明显异常。"),
    ("dwi", "DWI未见弥散受限。"),
)
FAMILIES = ("bracket", "plain", "numbered", "running", "short", "formal")
CENTER_STYLE = {  # family weights and size unit per center
    "center_a": ((0.35, 0.25, 0.2, 0.0, 0.1, 0.1), "cm"),
    "center_b": ((0.0, 0.2, 0.1, 0.4, 0.3, 0.0), "mm"),
    "center_c": ((0.2, 0.0, 0.4, 0.1, 0.0, 0.3), "cm"),
    "center_d": ((0.1, 0.3, 0.0, 0.2, 0.2, 0.2), "mm"),
    "center_e": ((0.3, 0.2, 0.2, 0.1, 0.1, 0.1), "cm"),
    "center_f": ((0.1, 0.1, 0.2, 0.3, 0.2, 0.1), "mm"),
}


@dataclass(frozen=True)
class ReportFacts:
    """The ground truth a report is written from."""

    subtype: str
    laterality: str
    locations: tuple[str, ...]
    grade: str | None
    size_mm: tuple[float, float] | None  # two largest in-plane dimensions of the largest lesion
    n_lesions: int
    contrast: bool
    atrophy: bool
    sex: str
    age_years: int


def _size(size_mm: tuple[float, float], unit: str, rng: np.random.Generator) -> str:
    a, b = size_mm
    if unit == "cm":
        return f"{a / 10:.1f}cm×{b / 10:.1f}cm" if rng.random() < 0.6 else f"{a / 10:.1f}×{b / 10:.1f}cm"
    return f"{a:.0f}mm×{b:.0f}mm" if rng.random() < 0.5 else f"{a:.0f}mm"


def _location(facts: ReportFacts) -> str:
    names = [SITES[c][0] for c in facts.locations]
    side = SIDE_ZH[facts.laterality] if facts.subtype != "metastasis" else ""
    return side + "、".join(names)


def _findings(facts: ReportFacts, unit: str, rng: np.random.Generator) -> list[str]:
    if facts.subtype == "normal":
        return []
    t1, t2, flair, dwi = SIGNALS[facts.subtype]
    loc = _location(facts)
    size = f"，大小约{_size(facts.size_mm, unit, rng)}" if facts.size_mm else ""
    s = facts.subtype
    if s == "metastasis":
        side = SIDE_ZH[facts.laterality]
        where = "、".join(SITES[c][0] for c in facts.locations)
        count = "多发" if facts.n_lesions > 1 else "单发"
        first = f"{side}{where}见{count}{SHAPES[s]}异常信号（{facts.n_lesions}个），较大者{size[1:]}"
    elif s == "chiari":
        first = f"小脑扁桃体变尖、下移，{'低于' if rng.random() < 0.5 else '超过'}枕骨大孔水平约{facts.size_mm[0]:.0f}mm"
    elif s == "subdural_hematoma":
        first = f"{SIDE_ZH[facts.laterality]}额颞顶部颅骨内板下见{SHAPES[s]}异常信号，最厚处约{facts.size_mm[0]:.0f}mm"
    elif s == "hippocampal_sclerosis":
        first = f"{SIDE_ZH[facts.laterality]}海马体积缩小，颞角扩大"
    else:
        first = f"{loc}见{SHAPES[s]}异常信号{size}"
    parts = [first + "。", f"T1WI呈{t1}，T2WI呈{t2}，FLAIR呈{flair}，DWI呈{dwi}。"]
    if s in ("glioma", "abscess", "metastasis", "hemorrhage", "contusion"):
        parts.append("周围见片状水肿信号" + ("，邻近脑室受压" if rng.random() < 0.5 else "") + "。")
    if facts.contrast and s in ("glioma", "meningioma", "metastasis", "abscess", "pituitary_adenoma"):
        enhance = {
            "glioma": "增强扫描呈不规则环形强化，中心见无强化坏死区"
            if facts.grade == "WHO 4"
            else ("增强扫描呈斑片状强化" if facts.grade == "WHO 3" else "增强扫描未见明显强化"),
            "meningioma": "增强扫描呈明显均匀强化，以宽基底与硬脑膜相连",
            "metastasis": "增强扫描呈结节状及环形强化",
            "abscess": "增强扫描呈光滑薄壁环形强化",
            "pituitary_adenoma": "增强扫描强化程度低于正常垂体",
        }[s]
        parts.append(enhance + "。")
    if s == "meningioma":
        parts.append("邻近脑实质受压" + ("，未见明显水肿" if rng.random() < 0.5 else "") + "。")
    return parts


def _normal_part(facts: ReportFacts, rng: np.random.Generator) -> list[str]:
    # Normal-structure sentences that would contradict the finding are left out.
    skip = {
        "hippocampal_sclerosis": {"hippocampus"},
        "encephalitis": {"hippocampus", "dwi"},
        "pituitary_adenoma": {"sella", "enhancement"},
        "chiari": {"posterior_fossa"},
        "cavernous_malformation": {"posterior_fossa"},
        "infarct": {"dwi"},
        "abscess": {"dwi", "enhancement"},
        "glioma": {"dwi", "enhancement"},
        "meningioma": {"enhancement"},
        "metastasis": {"enhancement"},
    }.get(facts.subtype, set())
    chosen = [
        text
        for key, text in NORMAL_SENTENCES
        if key not in skip and (key != "enhancement" or facts.contrast) and rng.random() < 0.7
    ]
    if facts.atrophy:
        chosen = [t for t in chosen if not t.startswith("脑沟")] + ["脑沟、脑裂增宽，脑室系统轻度扩大。"]
    if facts.subtype in ("glioma", "meningioma", "hemorrhage") and rng.random() < 0.5:
        chosen = [t.replace("中线结构居中", "中线结构稍移位") for t in chosen]
    return chosen


def _conclusion(facts: ReportFacts, rng: np.random.Generator) -> list[str]:
    hint = {"WHO 4": "（高级别可能）", "WHO 3": "（高级别不除外）", "WHO 2": "（低级别可能）"}.get(
        facts.grade or "", ""
    )
    main = DIAGNOSES[facts.subtype].format(
        loc=_location(facts),
        side=SIDE_ZH[facts.laterality],
        grade_hint=hint,
        multi="多发" if facts.n_lesions > 1 else "单发",
        stage="亚急性期" if facts.grade == "subacute" else "慢性期",
        size_class="大腺瘤" if facts.grade == "macroadenoma" else "微腺瘤",
        scan="平扫+增强" if facts.contrast else "平扫",
    )
    out = [main]
    if facts.atrophy:
        out.append("脑萎缩")
    if facts.subtype != "normal" and rng.random() < 0.4:
        out.append("建议结合临床及随访复查")
    return out


def _header(ident: PatientIdentity, institution: str, facts: ReportFacts, rng: np.random.Generator) -> str:
    sex = "男" if facts.sex == "M" else "女"
    if rng.random() < 0.5:
        return (
            f"{institution}磁共振检查报告单\n姓名：{ident.person.hanzi}  性别：{sex}  年龄：{facts.age_years}岁  "
            f"ID号：{ident.patient_id}  检查号：{ident.accession}\n检查日期：{ident.study_date:%Y-%m-%d}  "
            f"联系电话：{ident.phone}\n检查项目：头颅MRI{'平扫+增强' if facts.contrast else '平扫'}"
        )
    return (
        f"{institution} 放射科\n患者{ident.person.hanzi}（{ident.person.pinyin}），{sex}，{facts.age_years}岁，"
        f"住院号{ident.patient_id}，检查号{ident.accession}，{ident.study_date:%Y年%m月%d日}检查，电话{ident.phone}。"
    )


def _footer(ident: PatientIdentity) -> str:
    return (
        f"报告医师：{ident.reporter.hanzi}  审核医师：{ident.reviewer.hanzi}  "
        f"报告日期：{ident.study_date:%Y-%m-%d}  申请医师：{ident.referring.hanzi}"
    )


def write_report(
    facts: ReportFacts, ident: PatientIdentity, center_id: str, institution: str, rng: np.random.Generator
) -> str:
    """One report in a template family drawn from the center's preferences."""
    weights, unit = CENTER_STYLE[center_id]
    family = FAMILIES[int(rng.choice(len(FAMILIES), p=np.asarray(weights) / sum(weights)))]
    findings = _findings(facts, unit, rng) + _normal_part(facts, rng)
    if facts.subtype == "normal":
        findings = ["颅内未见明确异常信号。", *findings]
    conclusion = _conclusion(facts, rng)
    numbered = "\n".join(f"{i}. {c}。" for i, c in enumerate(conclusion, 1))
    joined = "；".join(conclusion) + "。"
    body = {
        "bracket": f"【检查所见】\n{''.join(findings)}\n【诊断意见】\n{numbered}",
        "plain": f"影像所见：\n{''.join(findings)}\n诊断意见：\n{joined}",
        "numbered": "MRI所见：\n"
        + "\n".join(f"{i}. {f}" for i, f in enumerate(findings, 1))
        + f"\n结论：\n{numbered}",
        "running": f"影像表现：{''.join(findings)}印象：{joined}",
        "short": f"检查所见：{''.join(findings)}\n结论：{joined}",
        "formal": f"影像所见\n{''.join(findings)}\n影像学诊断\n{numbered}",
    }[family]
    return f"{_header(ident, institution, facts, rng)}\n{body}\n{_footer(ident)}"
