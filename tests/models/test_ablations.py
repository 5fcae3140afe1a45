"""The encoder ablations of issue 13: branch variants (hybrid, ViT alone, ConvNeXt alone), crop-wise vs dense
masked ConvNeXt pretraining, lesion-aware vs uniform masking, and the hybrid's checkpoint layout unchanged."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from models import (
    PretrainConfig,
    ShardDataset,
    Trainer,
    create_encoder,
    create_mae,
    make_loader,
    write_shards,
)
from models.data import INDEX_FILE
from models.heads.segmentation import SegmentationModel
from models.hybrid_encoder import zero_masked_units
from models.masking import draw_unit_mask, lesion_unit_weights, visible_unit_ids
from models.train import check_resumable

VARIANTS = ["tiny", "tiny-vit", "tiny-convnext"]
CPU = torch.device("cpu")
# sha256 of the sorted "name:shape" lines of create_encoder("tiny").state_dict(), taken at commit 7774d51
# before the ablation switches existed: default hybrid checkpoints must keep loading unchanged.
TINY_HYBRID_KEYS = (87, "d68fff67eb86894b5b9b16d113bd4802af542d1463802982bae89c3282ad919b")


def write_masks(folder: Path, labels: np.ndarray, slice_ids: list[str]) -> Path:
    """A lesion-mask folder (docs/DATA_CONTRACT.md §3b, the columns the loader reads) with one shard."""
    folder.mkdir(parents=True)
    np.save(folder / "shard-00000.npy", labels)
    pq.write_table(pa.table({"slice_id": slice_ids, "shard": np.zeros(len(labels), np.int64),
                             "row": np.arange(len(labels), dtype=np.int64)}), folder / INDEX_FILE)
    return folder


def test_default_hybrid_keeps_its_state_dict_keys() -> None:
    state = create_encoder("tiny").state_dict()
    lines = "\n".join(f"{k}:{tuple(v.shape)}" for k, v in sorted(state.items()))
    assert (len(state), hashlib.sha256(lines.encode()).hexdigest()) == TINY_HYBRID_KEYS


@pytest.mark.parametrize("name", VARIANTS)
def test_every_variant_keeps_the_adapter_contract(name: str) -> None:
    torch.manual_seed(0)
    encoder = create_encoder(name)
    keys = encoder.state_dict().keys()
    assert any(k.startswith("vit.") for k in keys) == (name != "tiny-convnext")
    assert any(k.startswith("convnext.") for k in keys) == (name != "tiny-vit")
    grads: list[torch.Tensor] = []
    encoder.token_grid.register_full_backward_hook(lambda _m, _gi, go: grads.append(go[0]))
    features = encoder.forward_features(torch.rand(2, 1, 256, 256))
    assert isinstance(encoder.token_grid, torch.nn.Identity) and encoder.embed_dim == 64 and encoder.grid == 16
    assert features.embedding.shape == (2, 64) and features.tokens.shape == (2, 256, 64)
    assert [tuple(m.shape) for m in features.feature_maps] == [
        (2, c, 256 // s, 256 // s) for c, s in zip(encoder.feature_channels, encoder.feature_strides)
    ]
    features.embedding.sum().backward()
    assert grads and grads[0].shape == (2, 64, 16, 16)  # Grad-CAM's target sees the gradient of the embedding
    logits = SegmentationModel(encoder, n_classes=3)(torch.rand(1, 1, 256, 256))  # an adapter, unchanged
    assert logits.shape == (1, 3, 256, 256) and torch.isfinite(logits).all()


@pytest.mark.parametrize(("name", "conv_masking"), [("tiny-vit", "crops"), ("tiny-convnext", "crops"),
                                                    ("tiny-convnext", "dense"), ("tiny", "dense")])
def test_every_variant_pretrains(mni_shards: Path, name: str, conv_masking: str) -> None:
    """Two steps: finite losses, and every parameter that masked pretraining uses has moved (AdamW skips
    parameters without a gradient); the ViT's feature pyramid (dense heads only) is frozen and stays put."""
    trainer = Trainer(PretrainConfig(model=name, conv_masking=conv_masking, batch_size=2, steps=2), mni_shards, "cpu")
    before = {k: v.clone() for k, v in trainer.mae.state_dict().items()}
    trainer.train(2)
    assert len(trainer.history) == 2 and all(math.isfinite(v) for v in trainer.history)
    for key, param in trainer.mae.named_parameters():
        moved = not torch.equal(param, before[key])
        assert moved == param.requires_grad, key
        assert param.requires_grad == (".pyramid." not in key), key


def test_dense_is_refused_without_a_convnext() -> None:
    with pytest.raises(ValueError, match="ViT-only"):
        create_mae("tiny-vit", conv_masking="dense")
    with pytest.raises(ValueError, match="conv_masking"):
        PretrainConfig(conv_masking="sparse")


@pytest.mark.parametrize("name", ["tiny", "tiny-convnext"])
def test_dense_masking_does_not_leak(name: str) -> None:
    torch.manual_seed(0)
    encoder = create_encoder(name).eval()
    unit_ids = visible_unit_ids(draw_unit_mask(2, 256, 24, 0.5, torch.Generator().manual_seed(1), CPU), 24)
    x = torch.rand(2, 1, 256, 256)
    masked = zero_masked_units(torch.ones_like(x), unit_ids) == 0
    assert masked.float().mean() == pytest.approx(1 - 24 / 64)
    with torch.no_grad():
        tokens, embedding = encoder.encode_masked(x, unit_ids, "dense")
        tokens2, embedding2 = encoder.encode_masked(torch.where(masked, torch.rand_like(x) * 5, x), unit_ids, "dense")
        tokens3, _ = encoder.encode_masked(torch.where(masked, x, torch.rand_like(x)), unit_ids, "dense")
    torch.testing.assert_close(tokens2, tokens, rtol=0, atol=0)
    torch.testing.assert_close(embedding2, embedding, rtol=0, atol=0)
    assert not torch.allclose(tokens3, tokens)  # a change to visible pixels does show


def test_dense_units_see_their_neighbours_and_crops_do_not() -> None:
    """ConvNeXt alone (no ViT attention to mix units): changing visible unit 10 changes the features of its
    visible neighbour 9 under dense masking (context across the border), not under crops."""
    torch.manual_seed(0)
    encoder = create_encoder("tiny-convnext").eval()
    unit_ids = torch.tensor([[9, 10, 30, 45]])
    x = torch.rand(1, 1, 256, 256)
    changed = x.clone()
    changed[..., 32:64, 64:96] = torch.rand(32, 32)  # unit 10: row 1, column 2 of the 8x8 unit grid
    with torch.no_grad():
        out = {mode: [encoder.encode_masked(img, unit_ids, mode)[0] for img in (x, changed)]
               for mode in ("crops", "dense")}
    unit9 = slice(0, 4)  # unit 9's four tokens come first
    torch.testing.assert_close(out["crops"][1][:, unit9], out["crops"][0][:, unit9], rtol=0, atol=0)
    assert not torch.allclose(out["dense"][1][:, unit9], out["dense"][0][:, unit9])
    assert not torch.allclose(out["dense"][0], out["crops"][0])  # the modes differ on the same input


def test_lesion_weights_cover_lesion_and_border_and_follow_the_augmentation() -> None:
    lesion = torch.zeros(1, 1, 256, 256, dtype=torch.uint8)
    lesion[..., 64:96, 96:128] = 1  # exactly unit (2, 3)
    weights = lesion_unit_weights(lesion)[0, 0]
    assert weights.shape == (8, 8) and weights[2, 3] == 1.0
    # 4 px of border: 4 of 32 columns (or rows) of an edge neighbour, 4x4 pixels of a corner neighbour.
    assert weights[2, 4] == weights[2, 2] == weights[1, 3] == weights[3, 3] == pytest.approx(4 / 32)
    assert weights[1, 2] == pytest.approx(16 / 1024) and weights.sum() == pytest.approx(1 + 4 * 4 / 32 + 4 * 16 / 1024)
    flip = torch.tensor([[0.0, -1.0, 1.3, 0.8]])  # left-right flip; gamma and contrast must not matter
    torch.testing.assert_close(lesion_unit_weights(lesion, flip)[0, 0], weights.flip(-1), rtol=0, atol=1e-5)


def test_lesion_units_are_masked_more_often_by_the_expected_factor() -> None:
    n, bias = 40_000, 3.0
    weights = torch.zeros(n, 1, 8, 8)
    weights[:, :, 2:4, 3:7] = 1.0  # 8 lesion units
    on_lesion = weights[0, 0].flatten().bool()
    gen = torch.Generator().manual_seed(0)
    # One visible unit: the odds of a lesion unit against any other unit are exactly 1 / (1 + bias).
    one = draw_unit_mask(n, 256, 1, 0.0, gen, CPU, weights, bias).flatten(1).float().mean(0)
    assert (one[on_lesion].mean() / one[~on_lesion].mean()).item() == pytest.approx(1 / (1 + bias), rel=0.12)
    # 16 visible units (75 % masked): visible frequencies as torch.multinomial's weighted draws without
    # replacement, the reference for "successive draws proportional to 1 / (1 + bias * w)".
    masks = draw_unit_mask(n, 256, 16, 0.0, gen, CPU, weights, bias)
    assert (masks.flatten(1).sum(1) == 16).all()
    ours = masks.flatten(1).float().mean(0)
    keep = (1.0 / (1.0 + bias * weights.flatten(1)))
    reference = torch.zeros(n, 64).scatter_(1, torch.multinomial(keep, 16, generator=gen), 1.0).mean(0)
    for part in (on_lesion, ~on_lesion):
        assert ours[part].mean().item() == pytest.approx(reference[part].mean().item(), rel=0.05)
    assert 1 - ours[on_lesion].mean() > 1.2 * (1 - ours[~on_lesion].mean())  # lesions masked more often
    # Deterministic under the generator, block-wise too; zero weights (no mask) leave the uniform mask as is.
    for blockwise in (0.0, 1.0):
        draw = [draw_unit_mask(64, 256, 16, blockwise, torch.Generator().manual_seed(5), CPU, w, bias)
                for w in (weights[:64], weights[:64], torch.zeros(64, 1, 8, 8), None)]
        assert torch.equal(draw[0], draw[1]) and torch.equal(draw[2], draw[3]) and not torch.equal(draw[0], draw[3])
        assert (draw[0].flatten(1).sum(1) == 16).all()


def test_shard_dataset_joins_training_masks_on_slice_id(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    slices = rng.integers(0, 255, (20, 64, 64), dtype=np.uint8)
    images = write_shards(tmp_path / "images" / "center_a", slices, [f"P{i // 4}" for i in range(20)], shard_size=8)
    index = pq.read_table(images / INDEX_FILE).to_pandas()
    assert index["volume"].dtype == np.int64 and (index["volume"] == 0).all()  # docs/DATA_CONTRACT.md §3
    with_mask = [3, 7, 0, 18]  # slice 18 belongs to a validation patient, the others to training ones
    labels = np.zeros((4, 64, 64), np.uint8)
    for k in range(4):
        labels[k, 10 + k : 20 + k, 30:40] = k % 3 + 1  # labels 1, 2, 3: any counts as lesion
    masks = write_masks(tmp_path / "masks" / "center_a", labels, index.slice_id[with_mask].tolist())
    train = ShardDataset(images.parent, "train", lesion_masks=masks.parent)
    assert train.lesion_dirs == [masks]
    lesion = train.lesion(np.arange(len(train)))
    assert lesion.shape == (len(train), 1, 64, 64) and lesion.dtype == np.uint8
    rows = index[index.split == "train"].index.to_numpy()  # item order is index order within the split
    for item, row in enumerate(rows):
        expected = labels[with_mask.index(row)] > 0 if row in with_mask else np.zeros((64, 64), bool)
        np.testing.assert_array_equal(lesion[item, 0], expected)
    slices_batch, lesion_batch = next(iter(make_loader(train, None, 4, seed=0, num_workers=0)))
    assert slices_batch.shape == (4, 1, 64, 64) and lesion_batch.shape == (4, 1, 64, 64)
    with pytest.raises(ValueError, match="training split only"):
        ShardDataset(images, "val", lesion_masks=masks)
    write_masks(tmp_path / "masks" / "center_b", labels[:1], index.slice_id[[3]].tolist())
    with pytest.raises(ValueError, match="occurs twice"):
        ShardDataset(images, "train", lesion_masks=tmp_path / "masks")
    with pytest.raises(FileNotFoundError, match="section 3b"):
        ShardDataset(images, "train", lesion_masks=tmp_path / "nothing")


def test_trainer_masks_by_the_lesion_maps(mni_shards: Path, tmp_path: Path) -> None:
    """The lesion maps reach the mask: all-zero maps give the uniform run's step exactly, a lesion map
    another one; the mask folders join the checkpoint's data signature."""
    for center in ("center_a", "center_b"):
        index = pq.read_table(mni_shards / center / INDEX_FILE).to_pandas()
        train_ids = index.loc[index.split == "train", "slice_id"].tolist()
        labels = np.zeros((len(train_ids), 256, 256), np.uint8)
        labels[:, 96:160, 64:128] = 1
        write_masks(tmp_path / center, labels, train_ids)
    uniform = PretrainConfig(batch_size=2, steps=2)
    aware = dataclasses.replace(uniform, lesion_masks=tmp_path, lesion_bias=4.0)
    assert aware.lesion_masks == (str(tmp_path),)
    slices, lesion = next(Trainer(aware, mni_shards, "cpu").batches())
    assert lesion.shape == (2, 1, 256, 256) and (lesion[:, 0, 96:160, 64:128] == 1).all() and lesion.sum() == 2 * 64**2
    base = Trainer(uniform, mni_shards, "cpu").train_step(slices).loss
    zero = Trainer(aware, mni_shards, "cpu").train_step((slices, torch.zeros_like(lesion))).loss
    trainer = Trainer(aware, mni_shards, "cpu")
    biased = trainer.train_step((slices, lesion)).loss
    assert torch.equal(zero, base) and not torch.equal(biased, base) and math.isfinite(biased.item())
    assert [name for name, _ in trainer.data] == ["center_a", "center_b"] * 2
    with pytest.raises(ValueError, match="needs lesion_masks"):
        PretrainConfig(lesion_bias=1.0)


def test_checkpoints_from_before_the_ablation_settings_still_resume(tmp_path: Path) -> None:
    config = PretrainConfig()
    saved = json.loads(json.dumps({**config.to_dict(), "data": []}, default=list))
    for key in ("conv_masking", "lesion_masks", "lesion_bias"):
        del saved[key]
    check_resumable(saved, config, [], tmp_path)  # the settings it predates count as their defaults
    with pytest.raises(ValueError, match=r"other settings \(conv_masking\)"):
        check_resumable(saved, dataclasses.replace(config, conv_masking="dense"), [], tmp_path)
