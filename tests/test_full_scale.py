"""The README's full-scale switch, `cp params-full.yaml params.yaml && dvc exp run`, on the CPU at the users'
shapes: 500 x 500 x 18 scans pooled to 250 x 250 x 18, 8 in + 7 out, params-full's model and strides,
through the pipeline's own stages (synth, prepare, train_phase1), cut down to three short events, one
optimisation step at batch 1 and one validation window; then one evaluation window of the trained
checkpoint with every baseline. A grid, level or stride mismatch fails here, not on the users' GPU."""
import json

import torch
import yaml

from _pipeline import copy_project, run

# what the smoke run changes (the README's command, plus -S overrides that only shrink the run)
SMOKE = {"synthetic.events.advection": 1, "synthetic.events.multicell": 1, "synthetic.events.supercell": 1,
         "synthetic.scans_per_event": 15, "train.batch_size": 1, "train.accum_steps": 1, "train.num_workers": 0,
         "train.max_batches_per_epoch": 1, "train.max_val_windows": 1, "train.warmup_steps": 0, "phase1.epochs": 1}


def test_full_scale_switch_trains_a_step_and_evaluates_a_window(tmp_path):
    proj = copy_project(tmp_path / "proj")
    sets = " ".join(f"-S {k}={v}" for k, v in SMOKE.items())
    out = run(f"cp params-full.yaml params.yaml && dvc exp run {sets} train_phase1", proj, timeout=1500)
    params = yaml.safe_load((proj / "params.yaml").read_text())
    full = yaml.safe_load((proj / "params-full.yaml").read_text())
    assert params["model"] == full["model"] and params["prepare"] == full["prepare"]
    from nowcast.data import load_cache
    cache = load_cache(proj / params["prepare"]["cache_dir"])
    assert cache.shape[1:] == (18, 250, 250) and (cache.n_in, cache.n_out) == (8, 7), cache.shape
    summary = json.loads((proj / "reports/phase1_train.json").read_text())
    assert summary["final"]["train_loss"] > 0 and torch.isfinite(torch.tensor(summary["final"]["val_loss"]))
    from nowcast.inference import load_checkpoint
    ck = load_checkpoint(proj / "checkpoints/phase1_best.pt")
    assert ck["step"] == 1 and ck["model_config"]["name"] == full["model"]["name"], out[-2000:]
    assert ck["model_config"]["kwargs"]["downsample"] == full["model"]["downsample"]
    out = run(["nowcast", "evaluate", "--params", "params.yaml", "--model-path", "checkpoints/phase1_best.pt",
               "--max-windows", "1", "--reports-dir", "smoke"], proj, timeout=900)
    metrics = json.loads((proj / "smoke/metrics.json").read_text())
    assert set(metrics) == {"model", "persistence", "optical_flow", "titan_style"}, out[-2000:]
