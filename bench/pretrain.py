"""Pretraining speed of the hybrid MAE against the reference MAE, in one process on one GPU.

The reference is bench/reference_mae.py, a byte-identical copy of the project's shared reference
(../shared/bench/reference_mae.py): the facebookresearch/mae recipe at ViT-B/16. Both are timed the same
way (at least 5 warm-up steps, then the mean of `--steps` steps between CUDA syncs on one resident batch)
and FLOPs are counted the same way (torch.utils.flop_counter over one eager step, against 989 TFLOP/s dense
bf16), plus the hybrid's count with the grouped-convolution fix (models/flops.py). With several mask ratios
(`--mix-ratios`), warm-up lasts until every ratio's graph is compiled and the FLOPs of each timed step are
those of its own ratio. The loader is timed separately from shards written to local disk and evicted from
the page cache.

    python bench/pretrain.py --mix-ratios 0.5,0.625,0.75 --out $OUT/pretrain.json
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import reference_mae

from models.data import ShardDataset, make_loader, write_shards
from models.flops import count_flops, mfu
from models.registry import HybridSpec, register_size
from models.train import PretrainConfig, Trainer

# Diagnostic size: the base ViT with the smallest timm ConvNeXt, to show what the detail branch costs.
register_size("base_atto", HybridSpec(vit="vit_base_patch16_224", convnext="convnext_atto"))


def write_random_shards(folder: Path, n_slices: int, shard_size: int) -> Path:
    """Random uint8 slices (content does not matter for speed), flushed and evicted from the page cache
    so the loader reads from disk."""
    rng = np.random.default_rng(0)
    slices = rng.integers(0, 256, size=(n_slices, 256, 256), dtype=np.uint8)
    write_shards(folder, slices, [f"P{i // 64:05d}" for i in range(n_slices)], val_fraction=0.0, shard_size=shard_size)
    return evict_page_cache(folder)


def evict_page_cache(folder: Path) -> Path:
    """Flush the shards of `folder` and drop them from the page cache: the next read comes from disk."""
    for path in folder.glob("shard-*.npy"):
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    return folder


def time_steps(step, steps: int, warmup: int = 0) -> float:
    """Mean seconds per call of step() between CUDA syncs, after `warmup` untimed calls."""
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def warm_up(trainer: Trainer, batch: torch.Tensor, min_steps: int = 5) -> None:
    """Train steps until `min_steps` have run and every mask ratio of the config has been seen (compiled)."""
    todo = set(trainer.config.mask_ratios)
    for i in range(1000):
        if i >= min_steps and not todo:
            return
        todo.discard(trainer.mask_ratio(trainer.step))
        trainer.train_step(batch)
    raise RuntimeError(f"mask ratios {sorted(todo)} never drawn in 1000 steps")


def step_flops(trainer: Trainer, batch: torch.Tensor) -> dict[float, tuple[int, int]]:
    """FLOPs of one train step per mask ratio of trainer's config: (torch's count, grouped-conv fix).
    Counted with a single-ratio trainer per ratio (the step's ratio is drawn from the step index)."""
    counts = {}
    for ratio in trainer.config.mask_ratios:
        t = trainer if len(trainer.config.mask_ratios) == 1 else Trainer(
            dataclasses.replace(trainer.config, mask_ratios=(ratio,), compile=False), trainer.dataset.dirs, "cuda")
        step = functools.partial(t.train_step, batch)
        counts[ratio] = (count_flops(step), count_flops(step, grouped_conv_fix=True))
    return counts


def bench_hybrid(config: PretrainConfig, data: Path, steps: int, compile_mode: str | None, full: bool) -> dict[str, Any]:
    """Throughput of `Trainer.train_step` (augment, mask, forward, backward, clip, AdamW), compiled, and with
    `full` also eager, host syncs, a kernel profile and end to end from the on-disk loader."""
    trainer = Trainer(config, data, "cuda")
    batch = next(trainer.batches())
    flops = step_flops(trainer, batch)
    torch.cuda.empty_cache()
    results: dict[str, Any] = {"flops_per_step": {str(r): f for r, f in flops.items()}}
    for name in ("eager", "compiled") if full else ("compiled",):
        if name == "compiled":
            trainer.forward = torch.compile(trainer.model, dynamic=False, mode=compile_mode)
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        warm_up(trainer, batch)
        timed = [flops[trainer.mask_ratio(trainer.step + i)] for i in range(steps)]
        dt = time_steps(lambda: trainer.train_step(batch), steps)
        torch_count, fixed = (sum(c[k] for c in timed) / steps for k in (0, 1))
        results[name] = {
            "slices_s": config.batch_size / dt, "views_s": config.batch_size * config.views / dt,
            "step_ms": dt * 1e3, "tflops": torch_count / dt / 1e12, "tflops_grouped_conv_fix": fixed / dt / 1e12,
            "mfu": mfu(torch_count, dt),
            "mfu_grouped_conv_fix": mfu(fixed, dt), "mem_gb": torch.cuda.max_memory_allocated() / 1e9,
            "wall_incl_warmup_s": time.perf_counter() - t0,
        }
        print("hybrid", config.model, config.mask_ratios, name, json.dumps(results[name]), flush=True)
    if full:
        results["host_syncs_per_step"] = diagnose(count_syncs, trainer, batch)
        results["profile"] = diagnose(profile_step, trainer, batch)
        batches = trainer.batches()  # end to end: the compiled step fed by the loader from disk
        evict_page_cache(data)  # bench_loader read these shards before
        dt = time_steps(lambda: trainer.train_step(next(batches)), steps, warmup=5)  # warm-up: workers start
        results["end_to_end"] = {"slices_s": config.batch_size / dt}
        print("hybrid end_to_end", json.dumps(results["end_to_end"]), flush=True)
    return results


def reference_flops(batch: int) -> dict[str, int]:
    """The reference MAE's FLOPs per step, counted as it counts them and with the grouped-conv fix."""
    model = reference_mae.MAE("vit_base_patch16_224").cuda()
    x = torch.randn(batch, 1, 256, 256, device="cuda")

    def step() -> None:
        with torch.autocast("cuda", torch.bfloat16):
            loss = model(x)
        loss.backward()

    return {"flops_per_step": count_flops(step), "flops_per_step_grouped_conv_fix": count_flops(step, grouped_conv_fix=True)}


def diagnose(fn, *args: Any) -> Any:
    """Run a diagnostic; its failure is recorded, not fatal to the timings."""
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 - diagnostics only
        return {"error": repr(e)[:300]}


def count_syncs(trainer: Trainer, batch: torch.Tensor) -> list[str]:
    """Where one train step synchronises host and device ('file:line' of each warning of torch.cuda's sync
    debug mode; an empty list: none)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            trainer.train_step(batch)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return [f"{w.filename}:{w.lineno}" for w in caught if "synchroniz" in str(w.message)]


def profile_step(trainer: Trainer, batch: torch.Tensor) -> list[tuple[str, float]]:
    """Top CUDA kernels of 3 steps (name, % of device time): where the time goes."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            trainer.train_step(batch)
        torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if e.device_time_total > 0]
    total = sum(e.device_time_total for e in events)
    top = sorted(events, key=lambda e: -e.device_time_total)[:25]
    return [(e.key[:90], round(100 * e.device_time_total / total, 2)) for e in top]


def bench_loader(data: Path, batch: int, workers: int, batches: int) -> dict[str, float]:
    """Slices/s delivered to the GPU by make_loader from (cold) on-disk shards; keep batches * batch under
    the number of slices, so that no slice is read twice (from the page cache)."""
    loader = make_loader(ShardDataset(data, "train"), None, batch, num_workers=workers, pin_memory=True)
    it = iter(loader)
    for _ in range(3):
        next(it).to("cuda", non_blocking=True)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it).to("cuda", non_blocking=True)
    torch.cuda.synchronize()
    return {"slices_s": batch * batches / (time.perf_counter() - t0), "workers": workers, "batch": batch}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="base")
    ap.add_argument("--batch", type=int, default=128, help="slices per step (x2 views = the reference's 256 images)")
    ap.add_argument("--ref-batch", type=int, default=256)
    ap.add_argument("--ref-models", default="mae_vit_b16")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--mask-ratios", default="0.75", help="ratios drawn per step in the main run")
    ap.add_argument("--mix-ratios", default="", help="also time (compiled) this mix, e.g. 0.5,0.625,0.75")
    ap.add_argument("--variants", default="", help="extra sizes timed compiled only, e.g. base_atto")
    ap.add_argument("--compile-mode", default=None)
    ap.add_argument("--workers", type=int, default=12)
    ap.add_argument("--loader-slices", type=int, default=16384)
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    report: dict[str, Any] = {"torch": torch.__version__, "device": torch.cuda.get_device_name(), "args": vars(a) | {"out": str(a.out)}}

    def save() -> None:
        a.out.write_text(json.dumps(report, indent=1, default=str))

    if not a.skip_reference:
        makers = {"mae_vit_b16": lambda: reference_mae.MAE("vit_base_patch16_224"),
                  "mae_vit_l16": lambda: reference_mae.MAE("vit_large_patch16_224")}
        for name in a.ref_models.split(","):
            for compiled in (False, True):
                r = reference_mae.bench(makers[name](), a.ref_batch, steps=a.steps, compile_=compiled, mode=a.compile_mode)
                torch.cuda.reset_peak_memory_stats()
                torch.cuda.empty_cache()
                report[f"reference {name} {'compiled' if compiled else 'eager'}"] = r
                print("reference", name, "compiled" if compiled else "eager", json.dumps(r), flush=True)
                save()
        report["reference flops"] = reference_flops(a.ref_batch)
        torch.cuda.empty_cache()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP", "/tmp")) as tmp:
        data = write_random_shards(Path(tmp) / "center_bench", a.loader_slices, 2048)
        report["loader"] = bench_loader(data, a.batch, a.workers, batches=a.loader_slices // a.batch - 4)
        print("loader", json.dumps(report["loader"]), flush=True)
        save()
        config = PretrainConfig.profile(
            "full", model=a.model, batch_size=a.batch, compile=False, num_workers=a.workers,
            mask_ratios=tuple(float(r) for r in a.mask_ratios.split(",")),
        )
        report["hybrid"] = bench_hybrid(config, data, a.steps, a.compile_mode, full=True)
        save()
        if a.mix_ratios:
            torch.cuda.empty_cache()
            mix = dataclasses.replace(config, mask_ratios=tuple(float(r) for r in a.mix_ratios.split(",")))
            report["hybrid mix"] = diagnose(bench_hybrid, mix, data, a.steps, a.compile_mode, False)
            save()
        for variant in filter(None, a.variants.split(",")):
            torch.cuda.empty_cache()
            report[f"hybrid {variant}"] = diagnose(
                bench_hybrid, dataclasses.replace(config, model=variant), data, a.steps, a.compile_mode, False
            )
            save()
    ref = report.get("reference mae_vit_b16 compiled", {})
    hyb = report["hybrid"]["compiled"]
    if "mfu" in ref:  # the reference has no grouped convolutions: its two counts agree (see "reference flops")
        report["mfu_ratio_compiled"] = hyb["mfu"] / ref["mfu"]
        report["mfu_ratio_compiled_grouped_conv_fix"] = hyb["mfu_grouped_conv_fix"] / ref["mfu"]
    report["loader_over_step"] = report["loader"]["slices_s"] / hyb["slices_s"]
    save()
    print("SUMMARY (MFU: torch count / grouped-conv fix)")
    for key in [k for k in report if k.startswith("reference mae")]:
        r = report[key]
        print(f"{key:40s} {r['img_s']:8.0f} img/s            MFU {100 * r['mfu']:5.1f}%          {r['mem_gb']:5.1f} GB")
    for key, name in [("hybrid", "eager"), ("hybrid", "compiled"), ("hybrid mix", "compiled")]:
        r = report.get(key, {}).get(name)
        if r:
            print(f"{key + ' ' + name:40s} {r['slices_s']:8.0f} slices/s {r['step_ms']:6.1f} ms "
                  f"MFU {100 * r['mfu']:5.1f}% / {100 * r['mfu_grouped_conv_fix']:5.1f}% {r['mem_gb']:5.1f} GB")
    print({k: report[k] for k in ("mfu_ratio_compiled", "mfu_ratio_compiled_grouped_conv_fix", "loader_over_step")
           if k in report}, "loader", report["loader"], flush=True)

if __name__ == "__main__":
    main()
