"""Patient-level data splits: every slice, study and report of a patient lands on the same side.

The design fixes the ratios: 8:2 (train/val) for pretraining and vision-language data, 7:3 (train/test)
for downstream task data. Assignment is deterministic under a seed and stable when patients are added:
a patient's side depends only on (seed, patient key), never on how many other patients there are.
The downstream split (`stratified_split`) is the exception: it is stratified by center and category, computed
once from the labels table and read from there by every task; `label_fraction_subset` draws nested,
stratified subsets of its training side for label-efficiency curves.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

PRETRAIN_TRAIN_FRACTION = 0.8  # 8:2, pretraining and vision-language pairs
DOWNSTREAM_TRAIN_FRACTION = 0.7  # 7:3, downstream task data

Stratum = str | tuple[str, ...]  # e.g. (center, category); its repr seeds the stratum's random start


def _unit_interval(seed: int, patient: str) -> float:
    digest = hashlib.sha256(f"{seed}\x1f{patient}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(
    patient: str, train_fraction: float, seed: int = 0, names: tuple[str, str] = ("train", "val")
) -> str:
    """Return ``names[0]`` for a patient whose hash falls below ``train_fraction``, else ``names[1]``."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must lie in (0, 1), got {train_fraction}")
    return names[0] if _unit_interval(seed, patient) < train_fraction else names[1]


def split_patients(
    patients: Iterable[str], train_fraction: float, seed: int = 0, names: tuple[str, str] = ("train", "val")
) -> dict[str, str]:
    """Assign each distinct patient to a side with `assign_split`.

    No rebalancing, on purpose: images are split per center and reports over all centers, and a patient must
    land on the same side in both; any rule that looks at the other patients of a call (such as moving one
    patient when a small cohort leaves a side empty) would break that. A cohort of a few patients can
    therefore leave a side empty; consumers that need both say so (e.g. `models.data.ShardDataset`).
    """
    return {p: assign_split(p, train_fraction, seed, names) for p in sorted(set(patients))}


def _round_half_up(x: float) -> int:
    return int(x + 0.5)


def _stratified_ranking(strata: Mapping[str, Stratum], seed: int, seat_from: int) -> list[str]:
    """The patients of ``strata`` (patient → stratum) ranked so that every prefix is a proportional stratified
    sample; the first patient of every stratum of at least ``seat_from`` patients ranks before all others.

    Systematic sampling with a random start, written here because scikit-learn's stratified splitters refuse
    strata of one patient, do not promise a patient on each side of a small stratum, and do not nest across
    sample sizes: within a stratum of n patients, in the order of their hash under ``seed``, the j-th ranks at
    (j + u) / n with u the stratum's own start in [0, 1); ties are broken by the patient's hash.
    """
    members: dict[Stratum, list[str]] = defaultdict(list)
    for patient, stratum in strata.items():
        members[stratum].append(patient)
    keyed: list[tuple[float, float, str]] = []
    for stratum, patients in members.items():
        start = _unit_interval(seed, f"stratum\x1f{stratum!r}")
        ordered = sorted(patients, key=lambda p: (_unit_interval(seed, p), p))
        for j, patient in enumerate(ordered):
            seated = j == 0 and len(ordered) >= seat_from
            rank = -1.0 if seated else (j + start) / len(ordered)
            keyed.append((rank, _unit_interval(seed, patient), patient))
    return [patient for *_, patient in sorted(keyed)]


def stratified_split(
    strata: Mapping[str, Stratum],
    train_fraction: float = DOWNSTREAM_TRAIN_FRACTION,
    seed: int = 0,
    names: tuple[str, str] = ("train", "test"),
) -> dict[str, str]:
    """The downstream 7:3 split: each patient (key of ``strata``, value its stratum, e.g. (center, category))
    → ``names[0]`` or ``names[1]``, deterministic under ``seed``.

    round(train_fraction × patients) go to ``names[0]`` (fewer only where the rule below leaves too few
    candidates), in the same share within every stratum up to rounding; a stratum of two or more patients
    keeps at least one on each side wherever there are at least as many training places as such strata. A
    stratum of one patient lands on ``names[0]`` with probability about ``train_fraction``.

    Unlike :func:`split_patients`, a patient's side depends on the other patients of the call: that is what
    stratifying means. It is safe here because the split is computed once, in one place (the
    ``clinical_tables`` asset, from the pseudonymised labels table), and written as the ``split`` column of
    the labels, clinical and outcomes tables that every task reads; no second call exists that could
    disagree. A new cohort version may move patients, so results are compared within one version.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must lie in (0, 1), got {train_fraction}")
    sizes = Counter(strata.values())
    n_train = _round_half_up(train_fraction * len(strata))
    taken: Counter[Stratum] = Counter()
    train: set[str] = set()
    for patient in _stratified_ranking(strata, seed, seat_from=2):
        if len(train) == n_train:
            break
        stratum = strata[patient]
        if sizes[stratum] >= 2 and taken[stratum] == sizes[stratum] - 1:
            continue  # the stratum's last patient stays on the other side
        train.add(patient)
        taken[stratum] += 1
    return {p: names[0] if p in train else names[1] for p in sorted(strata)}


def label_fraction_subset(
    train_patients: Iterable[str], strata: Mapping[str, Stratum], fraction: float, seed: int = 0
) -> list[str]:
    """A stratified subset of ``train_patients`` holding ``fraction`` of them (sorted), for label-efficiency
    curves (10 %, 20 %, … 100 % of the training labels).

    Nested: for one seed and one set of patients, the subset at a smaller fraction lies inside the subset at
    a larger one (both are prefixes of one stratified ranking), so a curve adds data and never swaps it.
    Every stratum with a training patient keeps at least one, so a subset can be larger than
    round(fraction × patients) when there are many small strata. ``strata`` maps each patient to its stratum
    (e.g. (center, category), as for :func:`stratified_split`); patients outside ``train_patients`` are
    ignored.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1] (e.g. 0.1 for 10 % of the labels), got {fraction}")
    patients = sorted(set(train_patients))
    missing = [p for p in patients if p not in strata]
    if missing:
        raise ValueError(f"{len(missing)} training patient(s) have no stratum; pass a stratum for every one.")
    mine = {p: strata[p] for p in patients}
    size = max(_round_half_up(fraction * len(patients)), len(set(mine.values())))
    return sorted(_stratified_ranking(mine, seed, seat_from=1)[:size])
