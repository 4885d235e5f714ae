"""Shared fixtures: a tiny prepared cache and params that train on it in seconds (CPU).

`tiny_cache` is built once per session: the embedded synthetic archive generator
(`nowcast.synthetic.make_archive`) at a tiny size, then `nowcast.data.prepare` pools it (2x2) into a
16x16x2 cache of 4 + 3 scan windows, one event per split."""
import copy
from pathlib import Path

import pytest

N_IN, N_OUT, NXY, NZ, POOL = 4, 3, 32, 2, 2


def _make_raw(raw_dir: Path):
    from nowcast.synthetic import make_archive
    make_archive(raw_dir, seed=7, nx=NXY, ny=NXY, nz=NZ, dx_km=2.0, z_top_km=17.0, cadence_s=300, scans_per_event=12,
                 events={"advection": 1, "multicell": 1, "supercell": 1}, origin_lat=39.87, origin_lon=-104.76)


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> Path:
    "A prepared cache (16x16 pooled grid, 2 levels, 4 + 3 windows, train/val/test one event each)."
    from nowcast.data import prepare
    root = tmp_path_factory.mktemp("tiny_cache")
    raw, cache = root / "raw", root / "cache"
    _make_raw(raw)
    prepare(raw, cache, pool=POOL, n_in=N_IN, n_out=N_OUT, max_gap_s=450, split={"train": 0.34, "val": 0.33, "test": 0.33})
    return cache


_PARAMS = {
    "seed": 42,
    "data": {"field": "DBZ", "event_gap_s": 1800},
    "prepare": {"pool": POOL, "dbz_min": -10.0, "dbz_max": 70.0, "dbz_step": 0.5, "n_in": N_IN, "n_out": N_OUT,
                "stride": 1, "max_gap_s": 450},
    "model": {"name": "ConvLSTM3D_Enhanced", "hidden": [4], "kernel": 3, "groups": 2, "downsample": 2},
    "train": {"batch_size": 2, "accum_steps": 1, "num_workers": 0, "amp": "auto", "huber_delta_dbz": 4.0,
              "high_threshold_dbz": 40.0, "weight_decay": 0.0, "warmup_steps": 2, "keep_last": 2,
              "nan_policy": "error", "device": "cpu", "ckpt_dir": "checkpoints", "log_dir": "dvclive"},
    "phase1": {"name": "burn-in", "epochs": 2, "lr": 3e-3, "scheduler": "none", "high_penalty_weight": 10.0,
               "ssim_weight": 0.1, "grad_clip": 1.0, "init_from": None},
    "phase2": {"name": "advection", "epochs": 3, "lr": 1e-3, "scheduler": "plateau", "patience": 1,
               "high_penalty_weight": 5.0, "ssim_weight": 1.0, "grad_clip": 1.0, "init_from": "checkpoints/phase1_best.pt"},
    "phase3": {"name": "high-frequency", "epochs": 4, "lr": 1e-4, "scheduler": "cosine", "high_penalty_weight": 2.5,
               "ssim_weight": 1.0, "grad_clip": 0.1, "init_from": "checkpoints/phase2_best.pt"},
}


@pytest.fixture
def tiny_params(tiny_cache) -> dict:
    "A params dict (fresh copy per test) that trains the tiny model on `tiny_cache` in seconds; paths relative to the test's root."
    p = copy.deepcopy(_PARAMS)
    p["prepare"]["cache_dir"] = str(tiny_cache)
    return p
