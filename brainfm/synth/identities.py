"""Planted patient identifiers: Chinese names with pinyin, IDs, dates, phones, physicians.

Everything here is fictional and drawn from the seed; every string is also written to manifest.json
so that tests can prove none of it survives de-identification.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

# (character, pinyin) pools; combinations are fictional.
SURNAMES = (
    ("王", "Wang"),
    ("李", "Li"),
    ("张", "Zhang"),
    ("刘", "Liu"),
    ("陈", "Chen"),
    ("杨", "Yang"),
    ("黄", "Huang"),
    ("赵", "Zhao"),
    ("吴", "Wu"),
    ("周", "Zhou"),
    ("徐", "Xu"),
    ("孙", "Sun"),
    ("马", "Ma"),
    ("朱", "Zhu"),
    ("胡", "Hu"),
    ("郭", "Guo"),
    ("何", "He"),
    ("高", "Gao"),
    ("林", "Lin"),
    ("罗", "Luo"),
    ("欧阳", "Ouyang"),
)
GIVEN = (
    ("伟", "Wei"),
    ("芳", "Fang"),
    ("娜", "Na"),
    ("敏", "Min"),
    ("静", "Jing"),
    ("丽", "Li"),
    ("强", "Qiang"),
    ("磊", "Lei"),
    ("军", "Jun"),
    ("洋", "Yang"),
    ("勇", "Yong"),
    ("艳", "Yan"),
    ("杰", "Jie"),
    ("涛", "Tao"),
    ("明", "Ming"),
    ("超", "Chao"),
    ("秀英", "Xiuying"),
    ("建国", "Jianguo"),
    ("志强", "Zhiqiang"),
    ("海燕", "Haiyan"),
    ("晓东", "Xiaodong"),
    ("春梅", "Chunmei"),
    ("子涵", "Zihan"),
    ("雨萱", "Yuxuan"),
    ("嘉怡", "Jiayi"),
    ("浩然", "Haoran"),
    ("宇轩", "Yuxuan"),
    ("桂兰", "Guilan"),
    ("玉珍", "Yuzhen"),
)


@dataclass(frozen=True)
class Person:
    """A fictional person: Chinese name and its pinyin."""

    family_hanzi: str  # e.g. 王
    given_hanzi: str  # e.g. 晓东
    family_pinyin: str  # e.g. Wang
    given_pinyin: str  # e.g. Xiaodong

    @property
    def hanzi(self) -> str:
        return self.family_hanzi + self.given_hanzi

    @property
    def pinyin(self) -> str:
        """``WANG XIAODONG``, as Chinese PACS usually export."""
        return f"{self.family_pinyin} {self.given_pinyin}".upper()

    @property
    def dicom_pn(self) -> str:
        """PN with alphabetic and ideographic groups: ``Wang^Xiaodong=王^晓东``."""
        return f"{self.family_pinyin}^{self.given_pinyin}={self.family_hanzi}^{self.given_hanzi}"


def draw_person(rng: np.random.Generator) -> Person:
    family = SURNAMES[int(rng.integers(len(SURNAMES)))]
    given = [GIVEN[int(i)] for i in rng.choice(len(GIVEN), size=int(rng.integers(1, 3)), replace=False)]
    if len(given) == 2 and any(len(g[0]) > 1 for g in given):
        given = given[:1]
    return Person(
        family[0], "".join(g[0] for g in given), family[1], "".join(g[1] for g in given).capitalize()
    )


@dataclass(frozen=True)
class PatientIdentity:
    """Every identifier planted for one patient and study."""

    person: Person
    patient_id: str  # hospital MRN, e.g. A0012345
    national_id: str  # 18-digit resident-ID-like number (fictional, checksum not valid on purpose)
    birth_date: date
    study_date: date
    accession: str
    phone: str
    referring: Person
    performing: Person
    operator: Person
    reporter: Person
    reviewer: Person

    def strings(self) -> dict[str, list[str]]:
        """Identifying strings by kind, as they appear in headers, folder names and reports."""
        people = {
            "referring_physician": self.referring,
            "performing_physician": self.performing,
            "operator": self.operator,
            "reporting_physician": self.reporter,
            "reviewing_physician": self.reviewer,
        }
        out = {
            "patient_name": [self.person.hanzi, self.person.pinyin, self.person.dicom_pn],
            "patient_id": [self.patient_id],
            "national_id": [self.national_id],
            "birth_date": [self.birth_date.strftime("%Y%m%d"), self.birth_date.isoformat()],
            "study_date": [self.study_date.strftime("%Y%m%d"), self.study_date.isoformat()],
            "accession": [self.accession],
            "phone": [self.phone],
        }
        for kind, p in people.items():
            out[kind] = [p.hanzi, p.dicom_pn]
        return out


def draw_identity(
    rng: np.random.Generator, center_letter: str, index: int, phone_prefix: str, age_years: float
) -> PatientIdentity:
    """Identifiers for patient ``index`` (cohort-wide, keeps IDs unique); study dates fall in 2019-2025."""
    study_date = date(2019, 1, 1) + timedelta(days=int(rng.integers(0, 7 * 365)))
    birth_date = study_date - timedelta(days=int(age_years * 365.25) + int(rng.integers(0, 365)))
    region = int(rng.integers(110000, 659000))
    serial = int(rng.integers(100, 999))
    national_id = f"{region}{birth_date:%Y%m%d}{serial}{int(rng.integers(0, 10))}"
    mobile = f"1{int(rng.choice([3, 5, 8]))}{int(rng.integers(0, 10))}{int(rng.integers(10**7, 10**8))}"
    phone = mobile if rng.random() < 0.7 else f"{phone_prefix}-{int(rng.integers(10**7, 10**8))}"
    return PatientIdentity(
        person=draw_person(rng),
        patient_id=f"{center_letter.upper()}{int(rng.integers(100, 1000))}{index:05d}",
        national_id=national_id,
        birth_date=birth_date,
        study_date=study_date,
        accession=f"MR{study_date:%Y%m%d}{index:05d}",
        phone=phone,
        referring=draw_person(rng),
        performing=draw_person(rng),
        operator=draw_person(rng),
        reporter=draw_person(rng),
        reviewer=draw_person(rng),
    )
