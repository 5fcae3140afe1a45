"""Splitting a report into findings and impression, whatever the template.

Hospitals head their sections differently (影像所见 / 检查所见 / MRI所见 / 影像表现; 诊断意见 / 印象 / 结论 /
影像学诊断), in 【】 or [] brackets or followed by a colon, and some write running text with no headings at
all. A heading is recognised only in heading position (brackets, line start, or after punctuation and before
a colon), so 诊断 inside 临床诊断 or a sentence never opens a section.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FINDINGS = r"(?:头颅|颅脑|头部|脑部)?[A-Za-z+＋及和、/ 平扫增强磁共振]{0,16}(?:所见|表现)|影像所见|检查所见|影像表现|影像学表现|检查描述|影像描述|描述|Findings|FINDINGS"
_IMPRESSION = r"诊断意见|影像学诊断|影像诊断|诊断结论|检查结论|影像学意见|印象|结论|诊断|意见|Impression|IMPRESSION|Conclusion"
# Headings of everything else: header fields, technique, clinical history, sign-off. They close a section.
_OTHER = (
    r"检查方法|检查技术|扫描方法|扫描序列|扫描技术|检查部位|检查项目|临床诊断|临床资料|临床病史|病史摘要|病史|"
    r"临床表现|申请科室|科室|报告医师|审核医师|诊断医师|报告医生|审核医生|报告者|审核者|医师签名|签名|报告日期|"
    r"审核日期|检查日期|报告时间|备注"
)
# Demographic fields close a section too, but only as "label:" ([姓名] is a de-identification placeholder).
_DEMOGRAPHIC = r"姓\s*名|性\s*别|年\s*龄"
_HEADING = re.compile(
    rf"【\s*(?:(?P<f1>{_FINDINGS})|(?P<i1>{_IMPRESSION})|(?P<o1>{_OTHER}))\s*】[:：]?"
    rf"|\[\s*(?:(?P<f2>{_FINDINGS})|(?P<i2>{_IMPRESSION})|(?P<o2>{_OTHER}))\s*\][:：]?"
    rf"|(?:^|(?<=[\s。；;，,]))(?:(?P<f3>{_FINDINGS})|(?P<i3>{_IMPRESSION})|(?P<o3>{_OTHER}|{_DEMOGRAPHIC}))\s*(?:[:：]|$)",
    re.MULTILINE,
)
# Preamble lines that are header material (title, demographics, order data), not findings.
_HEADER_LINE = re.compile(r"报告单|报告书|检查报告|[:：]\s*\[|(?:号|ID|科室|床|设备|部位|项目|类型)\s*[:：]")
_FRAGMENT = re.compile(r"(?<=[。\n])")
# Sentences of headingless running text that state the impression.
_IMPRESSION_SENTENCE = re.compile(r"(?:^|(?<=[。\n]))\s*(?:考虑|提示|拟诊|诊断为|诊断|印象|结论)[^。\n]*[。]?")


@dataclass(frozen=True)
class Sections:
    findings: str
    impression: str


def _kind(match: re.Match[str]) -> str:
    name = match.lastgroup or ""
    return {"f": "findings", "i": "impression", "o": "other"}[name[0]]


def split_sections(text: str) -> Sections:
    """Return the findings and impression of a report (each stripped; "" when absent).

    Without a findings heading, the preamble minus header lines is the findings. Without an impression
    heading, sentences of the findings that open with 考虑 / 提示 / 诊断 / 印象 / 结论 are the impression.
    """
    parts: dict[str, list[str]] = {"findings": [], "impression": [], "other": []}
    matches = list(_HEADING.finditer(text))
    preamble = text[: matches[0].start()] if matches else text
    for match, nxt in zip(matches, [*matches[1:], None]):
        parts[_kind(match)].append(text[match.end() : nxt.start() if nxt else len(text)].strip())
    findings = "\n".join(p for p in parts["findings"] if p)
    impression = "\n".join(p for p in parts["impression"] if p)
    if not parts["findings"]:
        kept = (s for s in _FRAGMENT.split(preamble) if s.strip() and not _HEADER_LINE.search(s))
        findings = "".join(kept).strip()
    if not parts["impression"] and findings:
        sentences = [m.group(0).strip() for m in _IMPRESSION_SENTENCE.finditer(findings)]
        if sentences:
            impression = "".join(sentences)
            findings = _IMPRESSION_SENTENCE.sub("", findings).strip()
    return Sections(findings=findings, impression=impression)
