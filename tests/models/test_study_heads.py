"""Study-level adapters on a tiny encoder: bags, aggregation, the three heads (each must beat chance by a stated
margin on held-out synthetic studies), probe vs fine-tuning, save/load, and the Cox loss against lifelines.

The cohort is drawn here: 64-px slices (the tiny encoder at img_size=64, 16x less work than 256 px) in two
center folders, 3 slices per sequence, a third of the studies missing one sequence. The subtype is visible as a
pattern (glioma: bright disc on the left; meningioma: bright disc on the right; infarct: dark band; normal:
none) on two of the three slices of each series; the grade is the disc's radius; the true log-hazard and the
metastasis logit follow subtype and grade, plus age.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from lifelines import CoxPHFitter
from lifelines.utils import concordance_index
from sklearn.metrics import roc_auc_score

from models.data import write_shards
from models.heads.aggregate import StudyAggregator
from models.heads.classification import ClassificationHead, classification_loss
from models.heads.grading import GradingHead, ordinal_loss
from models.heads.prognosis import ClinicalBaseline, PrognosisHead, cox_partial_nll, prognosis_loss
from models.heads.study_data import BagLayout, StudyBags, flatten
from models.heads.study_train import (
    StudyConfig,
    load_study_adapter,
    predict_studies,
    save_study_adapter,
    train_study_adapter,
)
from models.hybrid_encoder import HybridEncoder, create_encoder

SIZE = 64
SUBTYPES = {"normal": "normal", "glioma": "tumor", "meningioma": "tumor", "infarct": "cerebrovascular"}
GRADES = {"glioma": ("WHO 2", "WHO 3", "WHO 4"), "meningioma": ("WHO 1", "WHO 2")}
RISK = {"normal": 0.0, "infarct": 1.5, "meningioma": 0.8, "glioma": 2.0}  # + 1.0 per glioma grade step


def _slice(subtype: str, level: int, lesion: bool, rng: np.random.Generator, contrast: float) -> np.ndarray:
    yy, xx = np.mgrid[:SIZE, :SIZE]
    brain = ((yy - 32) / 28) ** 2 + ((xx - 32) / 24) ** 2 < 1
    image = np.where(brain, 90.0, 5.0) + rng.normal(0, 8, (SIZE, SIZE))
    if lesion and subtype in GRADES:
        cx = (20 if subtype == "glioma" else 44) + rng.integers(-2, 3)
        cy = 32 + rng.integers(-4, 5)
        radius = 9 + 4 * level
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < radius**2] = 220 * contrast
    elif lesion and subtype == "infarct":
        top = 40 + rng.integers(-3, 4)
        image[top : top + 6, 14:50] = 20
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """Shard folders and a table with one row per study (labels, clinical variables, outcomes, split)."""
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("study_slices")
    rows, per_center = [], {"center_a": ([], [], []), "center_b": ([], [], [])}
    for p in range(180):
        subtype = list(SUBTYPES)[p % 4]
        level = int(rng.integers(len(GRADES[subtype]))) if subtype in GRADES else 0
        center = "center_a" if p % 3 else "center_b"
        patient = f"{center}-P{p:03d}"
        sequences = ["T1", "T2", "FLAIR"]
        if p % 3 == 0:
            sequences.remove(sequences[int(rng.integers(3))])
        slices, patients, seqs = per_center[center]
        for seq, contrast in zip(sequences, (0.9, 1.0, 1.1)):
            for s in range(3):
                slices.append(_slice(subtype, level, s > 0, rng, contrast))
                patients.append(patient)
                seqs.append(seq)
        age = rng.normal(55, 10)
        lp = RISK[subtype] + (1.0 * level if subtype == "glioma" else 0.0) + 0.3 * (age - 55) / 10
        time = rng.exponential(24 / np.exp(lp))
        censor = rng.uniform(12, 60)
        metastasis_logit = -2.0 + 2.5 * (subtype == "glioma") + 1.0 * level * (subtype == "glioma")
        rows.append({
            "patient": patient, "study": f"study-{patient}", "center": center, "category": SUBTYPES[subtype],
            "subtype": subtype, "grade": GRADES[subtype][level] if subtype in GRADES else None,
            "split": "test" if p % 3 == 2 else "train",
            "age_years": age, "sex": "M" if rng.random() < 0.5 else "F", "kps": float(rng.choice([70, 80, 90, 100])),
            "hypertension": bool(rng.random() < 0.3), "diabetes": bool(rng.random() < 0.1),
            "smoking": bool(rng.random() < 0.2),
            "survival_months": min(time, censor), "event": int(time <= censor),
            "metastasis": int(rng.random() < 1 / (1 + np.exp(-metastasis_logit))),
        })
    for center, (slices, patients, seqs) in per_center.items():
        write_shards(root / center, np.stack(slices), patients, shard_size=256, sequences=seqs)
    return root, pd.DataFrame(rows)


@pytest.fixture(scope="module")
def bags(cohort: tuple[Path, pd.DataFrame]) -> StudyBags:
    return StudyBags(cohort[0])


def tiny_encoder() -> HybridEncoder:
    torch.manual_seed(0)
    return create_encoder("tiny", img_size=SIZE).eval()


@pytest.fixture(scope="module")
def encoder() -> HybridEncoder:
    return tiny_encoder()


def split(table: pd.DataFrame, name: str) -> pd.DataFrame:
    return table[table["split"] == name].reset_index(drop=True)


def state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_bag_sampling_is_seeded_and_patient_complete(bags: StudyBags, cohort: tuple[Path, pd.DataFrame]) -> None:
    table = cohort[1]
    assert set(bags.studies) == set(table["study"])
    studies = list(table["study"][:30])
    first = bags.sample_bags(studies, 2, np.random.default_rng(7))
    again = bags.sample_bags(studies, 2, np.random.default_rng(7))
    other = bags.sample_bags(studies, 2, np.random.default_rng(8))
    assert all(np.array_equal(a[s], b[s]) for a, b in zip(first, again) for s in a)
    assert not all(np.array_equal(a[s], b[s]) for a, b in zip(first, other) for s in a)
    for study, bag in zip(studies, first):
        patient = table.set_index("study").loc[study, "patient"]
        assert bags.patient(study) == patient
        assert set(bag) == set(bags.sequences(study))  # every sequence the study has
        full = bags.all_slices(study)
        for seq, items in bag.items():
            assert len(items) == 2 and set(items) <= set(full[seq])  # k per series, from that series
            assert (bags.item_patients(items) == patient).all()  # never another patient's slice
    missing = table["study"][0]  # patients 0, 3, ... lack one sequence
    assert len(bags.sequences(missing)) == 2 and bags.read(flatten([bags.all_slices(missing)])).shape == (6, 1, 64, 64)


def test_study_missing_a_sequence_aggregates() -> None:
    torch.manual_seed(0)
    aggregator = StudyAggregator(dim=8, hidden=4)
    slices = torch.randn(3 + 2 + 4, 8)
    bags = [{"T1": np.arange(3), "FLAIR": np.arange(2)}, {"T2": np.arange(4)}]  # study 1: one sequence only
    layout = BagLayout.of(bags)
    assert layout.series_index.tolist() == [0, 0, 0, 1, 1, 2, 2, 2, 2] and layout.series_study.tolist() == [0, 0, 1]
    study = aggregator(slices, layout)
    weights = aggregator.attention(slices, layout)
    torch.testing.assert_close(weights[5:].sum(), torch.tensor(1.0))
    torch.testing.assert_close(study[1], (weights[5:, None] * slices[5:]).sum(0))  # one series: its pooled value
    alone = aggregator(slices[5:], BagLayout.of(bags[1:]))  # the batch's other studies do not matter
    torch.testing.assert_close(alone[0], study[1])
    series = [(weights[:3, None] * slices[:3]).sum(0), (weights[3:5, None] * slices[3:5]).sum(0)]
    torch.testing.assert_close(study[0], (series[0] + series[1]) / 2)  # mean over the series it has


def test_classification_probe_beats_chance_deterministically_and_leaves_encoder(
    encoder: HybridEncoder, bags: StudyBags, cohort: tuple[Path, pd.DataFrame]
) -> None:
    table = cohort[1]
    before = state(encoder)
    config = StudyConfig.profile("tiny")
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        head = ClassificationHead(encoder.embed_dim, sorted(set(SUBTYPES.values())), list(SUBTYPES))
        history = train_study_adapter(encoder, head, bags, head.targets(split(table, "train")), classification_loss,
                                      config)
        runs.append((history, state(head)))
    assert runs[0][0] == runs[1][0] and all(torch.equal(runs[0][1][k], runs[1][1][k]) for k in runs[0][1])
    assert all(torch.equal(before[k], v) for k, v in encoder.state_dict().items())  # the probe froze it
    test = split(table, "test")
    predicted = predict_studies(encoder, head, bags, list(test["study"]))
    subtype_accuracy = (predicted["subtype"].to_numpy() == test["subtype"].to_numpy()).mean()
    category_accuracy = (predicted["category"].to_numpy() == test["category"].to_numpy()).mean()
    assert subtype_accuracy >= 0.25 + 0.35, subtype_accuracy  # 4 balanced subtypes: chance 0.25
    assert category_accuracy >= 0.5 + 0.15, category_accuracy  # majority class (tumor): 0.5
    probs = predicted.filter(like="p_category_").to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)


def test_grading_probe_beats_the_majority_grade(
    encoder: HybridEncoder, bags: StudyBags, cohort: tuple[Path, pd.DataFrame]
) -> None:
    table = cohort[1]
    train, test = split(table, "train"), split(table, "test")
    torch.manual_seed(0)
    head = GradingHead(encoder.embed_dim)
    targets = head.targets(train)
    assert not targets.values["graded"][train["grade"].isna().to_numpy()].any()  # no loss without a grade
    train_study_adapter(encoder, head, bags, targets, ordinal_loss, StudyConfig.profile("tiny"))
    graded = test[test["grade"].notna()]
    predicted = predict_studies(encoder, head, bags, list(graded["study"]))
    hits = [predicted.loc[s, f"grade_{t}"] == g for s, t, g in zip(graded["study"], graded["subtype"], graded["grade"])]
    majority = {t: train[train["subtype"] == t]["grade"].mode()[0] for t in GRADES}
    baseline = np.mean([majority[t] == g for t, g in zip(graded["subtype"], graded["grade"])])
    assert np.mean(hits) >= baseline + 0.2, (np.mean(hits), baseline)  # majority grade per scale, from train


def test_prognosis_probe_beats_chance_and_clinical_baseline(
    encoder: HybridEncoder, bags: StudyBags, cohort: tuple[Path, pd.DataFrame]
) -> None:
    table = cohort[1]
    train, test = split(table, "train"), split(table, "test")
    torch.manual_seed(0)
    head = PrognosisHead.fit_scaler(encoder.embed_dim, train)
    config = StudyConfig.profile("tiny", steps=200, batch_studies=40)
    train_study_adapter(encoder, head, bags, head.targets(train), prognosis_loss, config)
    predicted = predict_studies(encoder, head, bags, list(test["study"]), head.standardise(test))
    c_index = concordance_index(test["survival_months"], -predicted["risk"], test["event"])
    auc = roc_auc_score(test["metastasis"], predicted["p_metastasis"])
    clinical = ClinicalBaseline.fit(train).predict(test)
    clinical_c = concordance_index(test["survival_months"], -clinical["risk"], test["event"])
    assert c_index >= 0.5 + 0.1, c_index  # chance 0.5; the true log-hazard scores about 0.76 here
    assert auc >= 0.5 + 0.2, auc
    assert c_index > clinical_c, (c_index, clinical_c)  # the risk is mostly in the image here


def test_finetune_changes_encoder_and_round_trips(
    bags: StudyBags, cohort: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    table = cohort[1]
    encoder = tiny_encoder()
    before = state(encoder)
    torch.manual_seed(0)
    head = ClassificationHead(encoder.embed_dim, sorted(set(SUBTYPES.values())), list(SUBTYPES))
    config = StudyConfig.profile("tiny", mode="finetune", steps=3, batch_studies=4, slices_per_series=2)
    history = train_study_adapter(encoder, head, bags, head.targets(split(table, "train")), classification_loss, config)
    assert len(history) == 3 and np.isfinite(history).all()
    assert any(not torch.equal(before[k], v) for k, v in encoder.state_dict().items())  # fine-tuned
    studies = list(split(table, "test")["study"][:4])
    expected = predict_studies(encoder, head, bags, studies)
    save_study_adapter(tmp_path / "adapter", encoder, head, config, history)
    fresh = tiny_encoder()
    loaded, loaded_config = load_study_adapter(tmp_path / "adapter", fresh)
    assert loaded_config == config and isinstance(loaded, ClassificationHead)
    pd.testing.assert_frame_equal(predict_studies(fresh, loaded, bags, studies), expected)


def test_cox_loss_matches_lifelines_and_breslow_ties() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=30)
    frame = pd.DataFrame({"x": x, "t": rng.exponential(np.exp(-x)), "e": (rng.random(30) < 0.7).astype(int)})
    fitted = CoxPHFitter().fit(frame, duration_col="t", event_col="e")  # distinct times: Efron = Breslow
    risk = torch.tensor(x * fitted.params_["x"], dtype=torch.float64)
    nll = cox_partial_nll(risk, torch.tensor(frame["t"].to_numpy()), torch.tensor(frame["e"].to_numpy()))
    assert float(-nll * frame["e"].sum()) == pytest.approx(fitted.log_likelihood_, rel=1e-6)
    # Ties (Breslow): both events at t=1 share the risk set {all three}: sum exp(r) = 1 + 2 + 1 = 4, so
    # log L = (0 - log 4) + (log 2 - log 4) = -3 log 2, over 2 events.
    tied = cox_partial_nll(torch.tensor([0.0, np.log(2.0), 0.0]), torch.tensor([1.0, 1.0, 2.0]),
                           torch.tensor([1, 1, 0]))
    assert float(tied) == pytest.approx(3 * np.log(2.0) / 2)
