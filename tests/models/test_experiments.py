"""`fit_study_task` with a shared slice-embedding table: a probe reading the table predicts exactly what a probe
embedding the held-out slices itself predicts, and the table is refused where it cannot serve.

The cohort is drawn here and kept tiny (20 studies, 64-px slices, 2 sequences of 3 slices): the assertions are
about equality of two runs, not about accuracy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from models.data import write_shards
from models.heads.experiments import Variant, fit_study_task, study_config
from models.heads.study_data import StudyBags
from models.heads.study_train import SliceEmbeddings, StudyConfig
from models.hybrid_encoder import HybridEncoder, create_encoder

SIZE = 64
SUBTYPES = {"normal": "normal", "glioma": "tumor", "infarct": "cerebrovascular"}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[StudyBags, pd.DataFrame]:
    """One shard folder of 20 patients (one study each, T1 and FLAIR, 3 slices each) and its label table."""
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("experiments_slices")
    slices, patients, sequences, rows = [], [], [], []
    for p in range(20):
        subtype = list(SUBTYPES)[p % 3]
        patient = f"P{p:03d}"
        for seq in ("T1", "FLAIR"):
            for _ in range(3):
                image = rng.normal(80, 10, (SIZE, SIZE))
                if subtype == "glioma":
                    image[20:36, 10:26] = 220  # a bright block: a learnable pattern for the probe
                slices.append(np.clip(image, 0, 255).astype(np.uint8))
                patients.append(patient)
                sequences.append(seq)
        rows.append({"patient": patient, "study": f"study-{patient}", "category": SUBTYPES[subtype],
                     "subtype": subtype, "split": "test" if p % 4 == 3 else "train"})
    write_shards(root / "center_a", np.stack(slices), patients, shard_size=64, sequences=sequences)
    return StudyBags(root / "center_a"), pd.DataFrame(rows)


@pytest.fixture(scope="module")
def encoder() -> HybridEncoder:
    torch.manual_seed(0)
    return create_encoder("tiny", img_size=SIZE).eval()


def test_cached_probe_predicts_exactly_what_an_uncached_probe_predicts(
    cohort: tuple[StudyBags, pd.DataFrame], encoder: HybridEncoder
) -> None:
    bags, table = cohort
    train, test = table[table["split"] == "train"], table[table["split"] == "test"]
    config = StudyConfig.profile("tiny", mode="probe", steps=10, seed=3)
    cache = SliceEmbeddings(encoder, bags, list(table["study"]), config.embed_batch)
    plain = fit_study_task("classification", encoder, bags, train, test, config, table)
    cached = fit_study_task("classification", encoder, bags, train, test, config, table, embeddings=cache)
    assert len(plain.predictions) == len(test) == 5
    assert plain.history == cached.history  # the table holds the embeddings training would compute
    pd.testing.assert_frame_equal(cached.predictions, plain.predictions, check_exact=True)


def test_embedding_table_is_refused_for_finetuning_and_when_it_lacks_slices(
    cohort: tuple[StudyBags, pd.DataFrame], encoder: HybridEncoder
) -> None:
    bags, table = cohort
    train, test = table[table["split"] == "train"], table[table["split"] == "test"]
    partial = SliceEmbeddings(encoder, bags, list(train["study"]), 64)
    finetune = study_config("tiny", Variant("pretrained", "finetune"), seed=0, finetune_steps=1)
    with pytest.raises(ValueError, match="only a probe"):
        fit_study_task("classification", encoder, bags, train, test, finetune, table, embeddings=partial)
    probe = study_config("tiny", Variant("pretrained", "probe"), seed=0)
    with pytest.raises(ValueError, match="lack slices of these studies"):
        fit_study_task("classification", encoder, bags, train, test, probe, table, embeddings=partial)


def test_kept_feature_maps_segment_as_the_segmenter_own_encoder_pass(
    cohort: tuple[StudyBags, pd.DataFrame], encoder: HybridEncoder
) -> None:
    """A table that keeps some slices' feature maps (predict: the segmented series) holds the same embeddings,
    and a probe segmenter on the same encoder reading those maps gives the labels of its own encoder pass."""
    from models.heads.seg_train import predict_segmentation
    from models.heads.segmentation import SegmentationModel

    bags, table = cohort
    studies = list(table["study"])[:3]
    plain = SliceEmbeddings(encoder, bags, studies, batch=4)
    keep = plain.items[[7, 1, 5]]  # across batches, out of order
    kept = SliceEmbeddings(encoder, bags, studies, batch=4, keep_maps=keep)
    torch.testing.assert_close(kept.embeddings, plain.embeddings, rtol=0, atol=0)
    torch.manual_seed(0)
    segmenter = SegmentationModel(encoder, width=8).eval()

    class Slices:  # what predict_segmentation reads: images (N, 1, H, W) uint8 by row
        def __len__(self) -> int:
            return len(keep)

        def __getitem__(self, rows: np.ndarray) -> tuple[np.ndarray, None]:
            return bags.read(keep[rows]).numpy(), None

    own = predict_segmentation(segmenter, Slices(), batch_size=2)  # type: ignore[arg-type]
    shared = predict_segmentation(segmenter, Slices(), batch_size=2, feature_maps=kept.kept_maps(keep))  # type: ignore[arg-type]
    assert own.shape == (3, SIZE, SIZE)
    np.testing.assert_array_equal(shared, own)
    with pytest.raises(ValueError, match="not slices of these studies"):
        SliceEmbeddings(encoder, bags, studies[:1], batch=4, keep_maps=plain.items[-1:])
    with pytest.raises(ValueError, match="were not kept"):
        kept.kept_maps(plain.items[:1])
