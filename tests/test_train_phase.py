"""The training stage on a real (tiny) prepared cache with the real models and loss (CPU)."""
import json

import numpy as np

import pytest
import torch


from nowcast import engine, train
from nowcast.train import load_checkpoint, load_model, train_phase

torch.set_num_threads(1)


@pytest.mark.parametrize("name", ["ConvLSTM", "ConvLSTM3D_Enhanced"])
def test_each_model_overfits_a_few_windows(tmp_path, tiny_params, name):
    "Each model drives the phase-1 loss on a handful of windows well below where it started."
    from nowcast.data import RadarWindows
    from torch.utils.data import Subset
    p = tiny_params
    p["model"]["name"] = name          # ConvLSTM takes no `groups`: model_from_params leaves it out
    p["train"]["warmup_steps"] = 0
    p["phase1"].update(epochs=50, lr=1e-2)
    ds = Subset(RadarWindows(p["prepare"]["cache_dir"], "train"), range(4))
    torch.manual_seed(0)
    cache = ds.dataset.cache
    model, cfg = train.model_from_params(p, int(cache.shape[1]), cache.n_in, cache.n_out, cache.norm)
    loss_fn = train._phase_loss(p, "phase1", ds.dataset.cache.norm)
    start = train.evaluate_loss(model, ds, loss_fn, batch_size=2)
    s = train.fit(model, ds, ds, loss_fn, p, "phase1", model_config=cfg, root=tmp_path)
    assert s["best_val"] < 0.5 * start, (start, s["best_val"])


def test_curriculum_and_load_model(tmp_path, tiny_params):
    "phase1 -> phase2 (init_from phase1_best) -> phase3; epochs count globally; load_model rebuilds the model."
    for phase in ("phase1", "phase2", "phase3"):
        train_phase(tiny_params, phase, root=tmp_path)
    report = json.loads((tmp_path / "reports/phase3_train.json").read_text())
    assert report["epochs_run"] == [3] and report["init_from"].endswith("phase2_best.pt")
    steps = [l.split("\t")[0] for l in (tmp_path / "dvclive/phase2/plots/metrics/val_loss.tsv").read_text().splitlines()[1:]]
    assert steps == ["2"]
    model, ck = load_model(tmp_path / "checkpoints/phase3_best.pt")
    assert not model.training and ck["model_config"]["name"] == "ConvLSTM3D_Enhanced"
    x = torch.zeros(1, 4, 2, 16, 16)
    assert model(x).shape == (1, 3, 2, 16, 16)


def test_missing_init_from_names_the_file(tmp_path, tiny_params):
    with pytest.raises(FileNotFoundError, match="phase1_best.pt"):
        train_phase(tiny_params, "phase2", root=tmp_path)


def test_init_from_loads_weights_not_optimizer(tmp_path, tiny_params):
    train_phase(tiny_params, "phase1", root=tmp_path)
    best = load_checkpoint(tmp_path / "checkpoints/phase1_best.pt")
    seen = {}
    def grab(epoch, batch, step):
        return False
    s = train_phase(tiny_params, "phase2", root=tmp_path, overrides={"phase2.lr": 0.0, "train.warmup_steps": 0},
                    on_step=grab)
    ck = load_checkpoint(tmp_path / "checkpoints/phase2_last.pt")
    # lr 0 and weight decay 0: the weights stay phase 1's best; the optimizer starts over (3 steps, not 6 + 3)
    for k, v in best["model"].items():
        assert torch.equal(v, ck["model"][k]), k
    assert ck["optimizer"]["state"][0]["step"].item() == 3 and ck["scheduler"]["steps"] == 3
    assert s["epochs_run"] == [2]


def test_kill_and_resume_equals_uninterrupted(tmp_path, tiny_params):
    "Stopped mid-epoch 1 and resumed, the real model ends with exactly the weights of an uninterrupted run."
    train_phase(tiny_params, "phase1", root=tmp_path / "a")
    with pytest.raises(train.TrainingInterrupted):
        train_phase(tiny_params, "phase1", root=tmp_path / "b", on_step=lambda e, b, s: (e, b) == (1, 1))
    assert load_checkpoint(tmp_path / "b/checkpoints/phase1_last.pt")["progress"]["batch"] == 1
    s = train_phase(tiny_params, "phase1", root=tmp_path / "b")
    assert s["resumed_from"].endswith("phase1_last.pt")
    a = load_checkpoint(tmp_path / "a/checkpoints/phase1_last.pt")
    b = load_checkpoint(tmp_path / "b/checkpoints/phase1_last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["best_val"] == b["best_val"]


def test_interrupted_run_with_other_settings_starts_over(tmp_path, tiny_params):
    "After a params change (DVC reruns the stage), an interrupted run of the old settings is not continued."
    with pytest.raises(train.TrainingInterrupted):
        train_phase(tiny_params, "phase1", root=tmp_path, on_step=lambda e, b, s: (e, b) == (1, 1))
    changed = {**tiny_params, "phase1": {**tiny_params["phase1"], "lr": tiny_params["phase1"]["lr"] / 2}}
    s = train_phase(changed, "phase1", root=tmp_path)
    assert s["resumed_from"] is None and s["epochs_run"] == list(range(*s["epochs"]))
    assert load_checkpoint(tmp_path / "checkpoints/phase1_last.pt")["params"]["phase1"]["lr"] == changed["phase1"]["lr"]


def test_nan_batch_names_phase_epoch_step(tmp_path, tiny_params, monkeypatch):
    "A NaN in the inputs stops training with an error naming where; `skip` counts it instead."
    from nowcast import cache
    # training reads uint8 codes and decodes them on the device with the dataset's table: code 255 (never
    # written by prepare) is made to decode to NaN, and window 0 of the training split gets one
    real_table, real_fill = cache.code_table, cache.RadarWindows._fill
    def table_with_nan(*a, **k):
        t = real_table(*a, **k).clone(); t[255] = float("nan"); return t
    def poisoned(self, i, inputs, targets, valid):   # both __getitem__ and __getitems__ fill windows through it
        real_fill(self, i, inputs, targets, valid)
        if self.split == "train" and i == 0:
            inputs[0, 0, 0, 0] = 255 if inputs.dtype == torch.uint8 else float("nan")
    monkeypatch.setattr(cache, "code_table", table_with_nan)   # where RadarWindows looks it up
    monkeypatch.setattr(cache.RadarWindows, "_fill", poisoned)
    with pytest.raises(FloatingPointError, match=r"phase1: non-finite loss .* at epoch 0, batch \d+, step \d+"):
        train_phase(tiny_params, "phase1", root=tmp_path / "err")
    s = train_phase(tiny_params, "phase1", root=tmp_path / "skip", overrides={"train.nan_policy": "skip"})
    assert s["skipped_batches"] == 2       # window 0 once per epoch
    assert json.loads((tmp_path / "skip/reports/phase1_train.json").read_text())["skipped_batches"] == 2


def test_channels_last_same_loss(tiny_params):
    "channels_last_3d on the 3-D model gives the same loss as the default layout (CPU)."
    from nowcast.data import RadarWindows
    ds = RadarWindows(tiny_params["prepare"]["cache_dir"], "train")
    torch.manual_seed(0)
    model, _ = train.model_from_params(tiny_params, int(ds.cache.shape[1]), ds.cache.n_in, ds.cache.n_out, ds.cache.norm)
    model.eval()
    loss_fn = train._phase_loss(tiny_params, "phase1", ds.cache.norm)
    batch = [torch.stack(t) for t in zip(ds[0], ds[1])]
    with torch.no_grad():
        ref = train.forward_loss(model, batch, loss_fn)[0]
        cl = train.forward_loss(train.apply_channels_last(model), batch, loss_fn, channels_last=True)[0]
    torch.testing.assert_close(cl, ref, rtol=1e-4, atol=1e-5)


def test_cli_trains_a_phase(tmp_path, tiny_params):
    "`nowcast train --params ... --phase phase1 --epochs 1 --set ...` in a fresh process, from the project folder."
    import subprocess, sys, yaml
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    res = subprocess.run([sys.executable, "-c", "import sys; from nowcast.train import cli_main; sys.exit(cli_main())",
                          "--params", "params.yaml", "--phase", "phase1", "--epochs", "1", "--batch-size", "3",
                          "--set", "phase1.lr=5e-4", "--device", "cpu"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "phase1: epochs 0..0" in res.stdout
    ck = load_checkpoint(tmp_path / "checkpoints/phase1_best.pt")
    assert ck["params"]["train"]["batch_size"] == 3 and ck["params"]["phase1"]["lr"] == 5e-4
    assert ck["step"] == 2                                    # 6 training windows / batch 3
    assert f"summary in {tmp_path.resolve() / 'reports/phase1_train.json'}" in res.stdout


def test_cli_root_puts_the_outputs_in_the_project_folder(tmp_path, tiny_params):
    "`nowcast train --root DIR` from another working directory: reports, checkpoints and dvclive go in DIR, none in cwd."
    import subprocess, sys, yaml
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir(); elsewhere.mkdir()
    (project / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    res = subprocess.run([sys.executable, "-c", "import sys; from nowcast.train import cli_main; sys.exit(cli_main())",
                          "--params", str(project / "params.yaml"), "--phase", "phase1", "--epochs", "1",
                          "--device", "cpu", "--root", str(project)],
                         cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads((project / "reports/phase1_train.json").read_text())["epochs_run"] == [0]
    assert (project / "checkpoints/phase1_best.pt").is_file() and (project / "dvclive/phase1").is_dir()
    assert list(elsewhere.iterdir()) == []
    assert f"best weights in {(project / 'checkpoints/phase1_best.pt').resolve()}" in res.stdout


def test_a_phase_goes_on_from_where_the_previous_one_ran(tmp_path, tiny_params, capsys):
    "Phase 1 cut short with `--epochs` (an override): phase 2 starts at the epoch phase 1's checkpoint reached, and says so."
    train_phase(tiny_params, "phase1", root=tmp_path, overrides={"phase1.epochs": 1})
    s = train_phase(tiny_params, "phase2", root=tmp_path, overrides={"phase2.epochs": 3})
    assert s["epochs"] == [1, 3] and s["epochs_run"] == [1, 2]
    assert "phase1 ran until epoch 1" in capsys.readouterr().err


def test_checkpoints_chosen_by_validation_csi_keep_the_starting_weights_unless_beaten(tmp_path, tiny_params):
    "train.select_by csi: the weights a phase starts from are scored first and stay `best` until an epoch scores higher."
    p = {**tiny_params, "train": {**tiny_params["train"], "select_by": "csi"}, "phase1": {**tiny_params["phase1"], "lr": 0.0}}
    s = train_phase(p, "phase1", root=tmp_path, overrides={"train.warmup_steps": 0})
    assert s["select_by"] == "csi" and s["start_val_score"] is not None
    best = load_checkpoint(tmp_path / "checkpoints/phase1_best.pt")
    assert best["epoch"] == -1 and best["best_val"] == -s["start_val_score"]   # lr 0: no epoch can beat the start


def test_a_resumed_phase_still_names_the_weights_it_keeps(tmp_path, tiny_params):
    """Pre-empted in epoch 1 and resumed, a phase whose starting weights stay best (lr 0) says so: the best epoch and
    the starting weights' score travel in the checkpoint, although the resumed run's history starts at epoch 1."""
    from nowcast.report import kept_checkpoint
    p = {**tiny_params, "train": {**tiny_params["train"], "select_by": "csi"}, "phase1": {**tiny_params["phase1"], "lr": 0.0}}
    whole = train_phase(p, "phase1", root=tmp_path / "a", overrides={"train.warmup_steps": 0})
    with pytest.raises(train.TrainingInterrupted):
        train_phase(p, "phase1", root=tmp_path / "b", overrides={"train.warmup_steps": 0},
                    on_step=lambda e, b, s: (e, b) == (1, 1))
    s = train_phase(p, "phase1", root=tmp_path / "b", overrides={"train.warmup_steps": 0})
    assert s["resumed_from"] and s["epochs_run"][0] == 1
    assert s["best_epoch"] == whole["best_epoch"] == -1 and s["start_val_score"] == whole["start_val_score"]
    assert kept_checkpoint(s) == kept_checkpoint(whole)
    assert kept_checkpoint(s).startswith("phase1 keeps the weights it started from")


def test_an_epoch_must_beat_the_best_by_train_select_min_gain(tmp_path, tiny_params, monkeypatch, capsys):
    """train.select_min_gain: an epoch that scores higher than the best by less than it is logged, not kept. Validation
    is scripted (the starting weights 0.300, then each epoch a little higher) so that the gains are known."""
    scripted = []
    real_validate = engine.validate   # the engine's call of it is spied on
    def scripted_validate(*a, **k):
        out = real_validate(*a, **k)
        csi = scripted.pop(0)   # hits / (hits + misses + false alarms) = csi at every lead
        return {**out, "counts": np.tile(np.array([[1000 * csi, 1000 * (1 - csi), 0.0]]), (len(out["counts"]), 1))}
    monkeypatch.setattr(engine, "validate", scripted_validate)
    p = {**tiny_params, "train": {**tiny_params["train"], "select_by": "csi"}}
    scripted[:] = [0.300, 0.303, 0.304]
    s = train_phase(p, "phase1", root=tmp_path / "any")
    assert s["select_min_gain"] == 0.0 and [r["gain_below_min"] for r in s["history"]] == [False, False]
    assert load_checkpoint(tmp_path / "any/checkpoints/phase1_best.pt")["epoch"] == 1
    capsys.readouterr()
    scripted[:] = [0.300, 0.303, 0.310]
    s = train_phase(p, "phase1", root=tmp_path / "min", overrides={"train.select_min_gain": 0.005})
    assert s["select_min_gain"] == 0.005 and abs(s["start_val_score"] - 0.300) < 1e-9
    assert [r["gain_below_min"] for r in s["history"]] == [True, False]   # 0.303: a gain of 0.003 only
    assert load_checkpoint(tmp_path / "min/checkpoints/phase1_best.pt")["epoch"] == 1   # 0.310 beats 0.300 by 0.01
    from nowcast.viz import read_dvclive_history   # what the phase report reads: numbers only (the flag as 0/1)
    assert "val_csi35" in read_dvclive_history(tmp_path / "min/dvclive")["phase1"]
    assert json.loads((tmp_path / "min/dvclive/phase1/metrics.json").read_text())["gain_below_min"] == 0
    assert "epoch 0" in capsys.readouterr().out.split("by less than train.select_min_gain: not kept")[0].splitlines()[-1]
    scripted[:] = [0.300, 0.303, 0.304]
    s = train_phase(p, "phase1", root=tmp_path / "kept", overrides={"train.select_min_gain": 0.005})
    assert [r["gain_below_min"] for r in s["history"]] == [True, True]
    assert load_checkpoint(tmp_path / "kept/checkpoints/phase1_best.pt")["epoch"] == -1   # the starting weights stay
    with pytest.raises(ValueError, match="select_min_gain must be >= 0"):
        train_phase(p, "phase1", root=tmp_path / "bad", overrides={"train.select_min_gain": -0.1})


def test_radars_of_two_sizes_train_on_crops_and_validate_on_whole_grids(tmp_path, tiny_params, monkeypatch):
    """Two radars with grids of different sizes: training items are crops of one size, while validation scores each
    radar's whole grid (the smaller padded as missing), so that crops' edges never rank the checkpoints."""
    import numpy as np
    from nowcast.data import load_cache, prepare
    from nowcast.io import Grid, azimuthal_equidistant, write_grid_netcdf
    for name, n in (("radar_a", 16), ("radar_b", 24)):
        g = Grid(np.arange(n) * 2.0, np.arange(n) * 2.0, np.array([1.0]), azimuthal_equidistant(39.87, -104.76))
        for k, t in enumerate(np.datetime64("2024-06-01T12:00", "s") + np.arange(20) * np.timedelta64(300, "s")):
            dbz = np.full(g.shape, 0.0, np.float32); dbz[:, 4:8, 2 + k // 2:6 + k // 2] = 45.0   # a storm moving east
            write_grid_netcdf(tmp_path / "raw" / name / "20240601" / f"{str(t)[11:].replace(':', '')}.nc", dbz, None, t, g)
    prepare(tmp_path / "raw", tmp_path / "cache", pool=1, n_in=4, n_out=3, split={"train": 0.5, "val": 0.5})
    p = {**tiny_params, "prepare": {**tiny_params["prepare"], "cache_dir": str(tmp_path / "cache"), "pool": 1},
         "model": {"name": "AdvectionNet", "hidden": [4, 4], "groups": 2, "downsample": [2, 2], "motion_prior": "lk",
                   "growth": False, "lk_levels": [4, 2, 1], "lk_sigma": 2.0, "lk_floor_dbz": 10.0,
                   "advect_space": "linear_z"},
         "train": {**tiny_params["train"], "crop": 8, "crops_per_window": 2, "select_by": "csi", "score_dbz": 35}}
    seen = []
    real_validate = engine.validate   # the engine's call of it is spied on
    def spy(model, dataset, *a, **k):
        seen.append(tuple(dataset[0][0].shape[-2:]) if dataset is not None and len(dataset) else None)
        return real_validate(model, dataset, *a, **k)
    monkeypatch.setattr(engine, "validate", spy)
    s = train_phase(p, "phase1", root=tmp_path, overrides={"phase1.epochs": 1})
    assert seen and set(seen) == {(24, 24)}, seen                 # whole grids, radar_a's 16 x 16 padded to 24 x 24
    assert s["start_val_score"] is not None and 0 < s["start_val_score"] <= 1
    ck = load_checkpoint(tmp_path / "checkpoints/phase1_best.pt")
    kw = ck["model_config"]["kwargs"]
    assert (kw["lk_levels"], kw["lk_sigma"], kw["lk_floor_dbz"], kw["advect_space"]) == ([4, 2, 1], 2.0, 10.0, "linear_z")
    norm = load_cache(tmp_path / "cache").norm   # the floor is measured on the cache's normalisation
    assert kw["dbz_range"] == [float(norm["dbz_min"]), float(norm["dbz_max"])]
