"""Pretraining on MNI-derived slices: it learns, it resumes exactly, it runs under 2-process DDP."""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
import torch.multiprocessing as mp

from models import PretrainConfig, Trainer, load_encoder, pretrain
from models.checkpoint import WEIGHTS_FILE, load_weights, save_checkpoint
from models.data import INDEX_FILE
from models.mae import create_mae
from models.train import init_distributed


def test_loss_falls_and_beats_mean_filled_baseline(mni_shards: Path, tmp_path: Path) -> None:
    result = pretrain(PretrainConfig(steps=40), mni_shards, tmp_path, "cpu", progress=False)
    losses = result.history
    assert len(losses) == 40 and all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-8:]) < 0.75 * np.mean(losses[:4])
    m = result.metrics
    assert m.n_slices > 0 and m.ssim > m.baseline_ssim + 0.05 and m.psnr_db > m.baseline_psnr_db
    # What had to be predicted, alone: the visible units (copied into both) no longer dilute the gap.
    assert m.masked_ssim > m.baseline_masked_ssim + 0.05 and m.masked_psnr_db > m.baseline_masked_psnr_db
    assert m.masked_ssim - m.baseline_masked_ssim > m.ssim - m.baseline_ssim
    assert result.loss_curve_png.stat().st_size > 0 and result.reconstruction_png.stat().st_size > 0
    encoder = load_encoder(result.checkpoint_dir)
    assert encoder(torch.rand(1, 1, 256, 256)).shape == (1, encoder.embed_dim)


def test_resume_matches_uninterrupted_run(mni_shards: Path, tmp_path: Path) -> None:
    config = PretrainConfig(steps=6, warmup_steps=2, val_slices=4)
    straight = pretrain(config, mni_shards, tmp_path / "straight", "cpu", progress=False)
    pretrain(config, mni_shards, tmp_path / "resumed", "cpu", progress=False, stop_at=3)
    resumed = pretrain(config, mni_shards, tmp_path / "resumed", "cpu", progress=False)
    assert resumed.steps == straight.steps == 6
    assert resumed.history == pytest.approx(straight.history, rel=0, abs=0)
    a, b = create_mae(config.model), create_mae(config.model)
    load_weights(straight.checkpoint_dir, a)
    load_weights(resumed.checkpoint_dir, b)
    torch.testing.assert_close(a.state_dict(), b.state_dict(), rtol=0, atol=0)


def test_resume_refuses_a_checkpoint_of_other_settings(mni_shards: Path, tmp_path: Path) -> None:
    config = PretrainConfig(steps=4, warmup_steps=1, val_slices=2)
    pretrain(config, mni_shards, tmp_path, "cpu", progress=False, stop_at=2)
    with pytest.raises(ValueError, match=r"other settings \(lr, seed\).*Delete that folder"):
        pretrain(dataclasses.replace(config, lr=1e-4, seed=5), mni_shards, tmp_path, "cpu", progress=False)
    other_data = tmp_path / "other" / mni_shards.name
    shutil.copytree(mni_shards, other_data)
    index = next(other_data.rglob(INDEX_FILE))
    pl.read_parquet(index).head(-1).write_parquet(index)  # one slice fewer
    with pytest.raises(ValueError, match=r"other settings \(data\)"):
        pretrain(config, other_data, tmp_path, "cpu", progress=False)
    with pytest.raises(ValueError, match=r"other settings \(data\)"):  # other held-out patients: other data
        pretrain(config, mni_shards, tmp_path, "cpu", progress=False, exclude_patients={"center_a-P000"})
    longer = pretrain(dataclasses.replace(config, steps=5), mni_shards, tmp_path, "cpu", progress=False)
    assert longer.steps == 5  # more steps is a resumable change


def test_a_save_interrupted_after_its_rename_does_not_block_the_next(tmp_path: Path) -> None:
    model = create_mae("tiny")
    (tmp_path / "checkpoint.old").mkdir()
    (tmp_path / "checkpoint.old" / WEIGHTS_FILE).write_bytes(b"left by a killed save")
    for _ in range(2):
        save_checkpoint(tmp_path / "checkpoint", model, {"model": "tiny"}, {"step": 0})
    assert not (tmp_path / "checkpoint.old").exists() and (tmp_path / "checkpoint" / WEIGHTS_FILE).is_file()


def _ddp_worker(rank: int, world: int, data: str, out: str, port: int, views: int) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    rank, world, device = init_distributed("cpu")
    trainer = Trainer(PretrainConfig(batch_size=4, steps=2, views=views), data, device, rank, world)
    trainer.train(2)
    torch.save({"state": trainer.mae.state_dict(), "history": trainer.history}, Path(out) / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


@pytest.mark.parametrize("views", [2, 1])  # 1: MAE alone, the projector takes no part in the loss
def test_ddp_two_processes_gloo(mni_shards: Path, tmp_path: Path, views: int) -> None:
    port = 29500 + (os.getpid() + 7 * views) % 1000
    mp.spawn(_ddp_worker, args=(2, str(mni_shards), str(tmp_path), port, views), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert len(r0["history"]) == 2 and all(math.isfinite(v) for v in r0["history"] + r1["history"])
    assert r0["history"] != r1["history"]  # each rank trained on its own half of the global batch
    torch.testing.assert_close(r0["state"], r1["state"], rtol=0, atol=0)
    initial = create_mae("tiny").state_dict()
    assert not torch.equal(r0["state"]["decoder_pred.weight"], initial["decoder_pred.weight"])


def test_checkpoint_files(mni_shards: Path, tmp_path: Path) -> None:
    result = pretrain(PretrainConfig(steps=1, val_slices=2), mni_shards, tmp_path, "cpu", progress=False)
    assert (result.checkpoint_dir / WEIGHTS_FILE).is_file()
    with pytest.raises(FileNotFoundError, match="checkpoint folder"):
        load_encoder(tmp_path)
