"""Training engine: faults, signals, pruning, accumulation, the command line (tiny stand-ins, CPU)."""
import json, os, signal, subprocess, sys, time
from pathlib import Path

import pytest
import torch

from nowcast import train
from nowcast.train import fit, load_checkpoint, save_checkpoint, TrainingInterrupted, PhaseSchedule
from _train_standins import TinyNet, mse_loss, tiny_params, tiny_windows

HERE = Path(__file__).resolve().parent
torch.set_num_threads(1)


def _fit(root, params=None, n=8, val=True, **kw):
    torch.manual_seed(0)
    net = TinyNet()
    s = fit(net, tiny_windows(n), tiny_windows(4, seed=1) if val else None, mse_loss, params or tiny_params(),
            "phase1", root=root, **kw)
    return net, s


def test_overfits_a_handful_of_windows(tmp_path):
    "Many epochs on 4 windows drive the loss well below where it started."
    p = tiny_params(warmup_steps=0)
    p["phase1"].update(epochs=30, lr=3e-3)
    torch.manual_seed(0)
    net = TinyNet(dropout=0.0)
    data = tiny_windows(4)
    start = train.evaluate_loss(net, data, mse_loss)
    s = fit(net, data, data, mse_loss, p, "phase1", root=tmp_path)
    assert s["best_val"] < 0.3 * start


@pytest.mark.parametrize("signums", [[signal.SIGTERM], [signal.SIGINT], [signal.SIGTERM, signal.SIGINT]],
                         ids=["SIGTERM", "SIGINT", "SIGTERM+SIGINT"])
def test_signal_writes_last_checkpoint(tmp_path, signums):
    """A real SIGTERM (pre-emption) or Ctrl-C to a training process: it writes phase1_last.pt and says so; a rerun
    resumes. SIGTERM then SIGINT 50 ms later (a host's shutdown signals every process; dumb-init, the image's PID 1
    that `make repro` runs dvc under too, passes its own SIGTERM on as SIGINT) is one request, not a second Ctrl-C."""
    signum = signums[0]
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{HERE.parent}"}   # this checkout's nowcast
    proc = subprocess.Popen([sys.executable, str(HERE / "_train_standins.py"), str(tmp_path), "slow"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        while line and not line.startswith("STEP"): line = proc.stdout.readline()   # the engine's own lines first
        assert line.startswith("STEP"), proc.stderr.read()
        for k, s in enumerate(signums):
            if k: time.sleep(0.05)
            proc.send_signal(s)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert f"{signal.Signals(signum).name} received" in err and "phase1_last.pt" in err
    ck = load_checkpoint(tmp_path / "checkpoints/phase1_last.pt")
    assert ck["finished"] is False and ck["phase"] == "phase1"
    assert 1 <= ck["progress"]["batch"] + 4 * ck["epoch"] < 8       # stopped before the end of the run
    # running again picks the unfinished run up and ends it
    _, s = _fit(tmp_path)
    assert s["resumed_from"] == str(tmp_path / "checkpoints/phase1_last.pt")
    assert load_checkpoint(tmp_path / "checkpoints/phase1_last.pt")["finished"] is True


def test_kill9_between_mid_epoch_checkpoints_loses_only_those_steps(tmp_path):
    """kill -9 (nothing can be caught) between two mid-epoch checkpoints: the rerun resumes from the last one, removes
    the temp file a kill during a save leaves, and ends bit-identical to an uninterrupted run."""
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    proc = subprocess.Popen([sys.executable, str(HERE / "_train_standins.py"), str(tmp_path / "k"), "ckpt"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:   # 8 windows, batch 2: 4 steps per epoch; checkpoints every 2 steps; kill at step 7 (epoch 1, batch 3)
        while True:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            if line.startswith("STEP 1 3"): break
        proc.kill()
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == -9
    ck = load_checkpoint(tmp_path / "k/checkpoints/phase1_last.pt")
    assert (ck["epoch"], ck["progress"]["batch"], ck["step"], ck["finished"]) == (1, 2, 6, False)
    leftover = tmp_path / "k/checkpoints/.phase1_last.pt.abc123.pt"
    leftover.write_bytes(b"")                       # what a kill during torch.save leaves
    net_k, s_k = _fit(tmp_path / "k", params=tiny_params(checkpoint_every_steps=2))
    assert s_k["resumed_from"].endswith("phase1_last.pt") and s_k["epochs_run"] == [1]
    assert not leftover.exists()
    net_a, _ = _fit(tmp_path / "a", params=tiny_params(checkpoint_every_steps=2))
    for (k, a), b in zip(net_a.state_dict().items(), net_k.state_dict().values()):
        assert torch.equal(a, b), k


def test_sigterm_exit_code_from_cli(tmp_path, monkeypatch, capsys):
    "The command line turns an interruption into a message and 128 + signal number."
    def interrupted(*a, **k):
        raise TrainingInterrupted("phase1: SIGTERM received; saved checkpoints/phase1_last.pt", None, signal.SIGTERM)
    monkeypatch.setattr(train, "train_phase", interrupted)
    params = tmp_path / "params.yaml"
    params.write_text("seed: 0\n")
    assert train.cli_main(["--params", str(params), "--phase", "phase1"]) == 143
    assert "SIGTERM received" in capsys.readouterr().err


def test_cli_overrides_reach_train_phase(tmp_path, monkeypatch):
    "--batch-size, --epochs, --device and --set become dotted overrides; paths pass through."
    seen = {}
    monkeypatch.setattr(train, "train_phase", lambda params, phase, **kw: seen.update(kw, phase=phase))
    params = tmp_path / "params.yaml"
    params.write_text("seed: 0\n")
    rc = train.cli_main(["--params", str(params), "--phase", "phase2", "--batch-size", "32", "--epochs", "9",
                         "--device", "cpu", "--set", "phase2.lr=3e-4", "--set", "train.amp=bf16",
                         "--resume-from", "checkpoints/phase2_last.pt"])
    assert rc == 0 and seen["phase"] == "phase2"
    assert seen["overrides"] == {"train.batch_size": 32, "phase2.epochs": 9, "train.device": "cpu",
                                 "phase2.lr": 3e-4, "train.amp": "bf16"}
    assert seen["resume_from"] == "checkpoints/phase2_last.pt"


def test_cli_missing_params_file(tmp_path, capsys):
    assert train.cli_main(["--params", str(tmp_path / "nope.yaml"), "--phase", "phase1"]) == 2
    assert "nope.yaml" in capsys.readouterr().err


def test_keep_last_prunes_epoch_checkpoints(tmp_path):
    p = tiny_params(keep_last=2)
    p["phase1"]["epochs"] = 4
    _fit(tmp_path, p, n=4)
    names = sorted(f.name for f in (tmp_path / "checkpoints/phase1").iterdir())
    assert names == ["epoch_002.pt", "epoch_003.pt"]


def test_checkpoints_load_weights_only(tmp_path):
    _fit(tmp_path)
    for f in (tmp_path / "checkpoints").rglob("*.pt"):
        ck = torch.load(f, weights_only=True)
        assert ck["params"]["seed"] == 0 and isinstance(ck["rng"]["numpy"]["keys"], torch.Tensor)


def test_failed_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    "A crash inside torch.save leaves the previous file intact and no temporary file."
    path = tmp_path / "phase1_last.pt"
    save_checkpoint({"model": {}, "epoch": 3}, path)
    def boom(obj, f, *a, **k):
        Path(f).write_bytes(b"partial")
        raise OSError("No space left on device")
    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint({"model": {}, "epoch": 4}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 3
    assert [f.name for f in tmp_path.iterdir()] == ["phase1_last.pt"]


def test_not_a_checkpoint_names_the_file(tmp_path):
    bad = tmp_path / "junk.pt"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="junk.pt"):
        load_checkpoint(bad)


def test_resume_from_other_phase_is_refused(tmp_path):
    _fit(tmp_path)
    p = tiny_params()
    p["phase2"] = {"epochs": 3, "lr": 1e-3, "scheduler": "none", "grad_clip": 1.0}
    with pytest.raises(ValueError, match="phase1 checkpoint cannot resume phase2"):
        fit(TinyNet(), tiny_windows(8), None, mse_loss, p, "phase2", root=tmp_path,
            resume_from=tmp_path / "checkpoints/phase1_last.pt")


def test_finished_run_is_not_resumed(tmp_path):
    "A finished phase's last.pt does not hijack a new run (e.g. after a params change): it starts over."
    _fit(tmp_path)
    _, s = _fit(tmp_path)
    assert s["resumed_from"] is None and s["epochs_run"] == [0, 1]


def test_accumulation_flushes_partial_window(tmp_path):
    "5 batches with accum_steps 2: 3 optimizer steps per epoch (the last window has one batch)."
    p = tiny_params(accum_steps=2)
    p["phase1"]["epochs"] = 1
    steps = []
    _fit(tmp_path, p, n=10, on_step=lambda e, b, s: steps.append(b) and False)
    assert steps == [2, 4, 5]
    assert load_checkpoint(tmp_path / "checkpoints/phase1_last.pt")["optimizer"]["state"][0]["step"].item() == 3


def test_accumulated_run_matches_big_batch(tmp_path):
    "accum 2 x batch 2 trains to the same weights as 1 x batch 4 (fp32, no batch norm, no dropout)."
    nets = []
    for bs, acc in ((4, 1), (2, 2)):
        p = tiny_params(batch_size=bs, accum_steps=acc)
        p["phase1"]["epochs"] = 1
        torch.manual_seed(0)
        net = TinyNet(dropout=0.0)
        fit(net, tiny_windows(8), None, mse_loss, p, "phase1", root=tmp_path / f"{bs}x{acc}")
        nets.append(net)
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_cosine_schedule_spans_the_phase(tmp_path):
    p = tiny_params(warmup_steps=1)
    p["phase1"].update(scheduler="cosine", epochs=2)
    _fit(tmp_path, p)
    sch = load_checkpoint(tmp_path / "checkpoints/phase1_last.pt")["scheduler"]
    assert sch["total_steps"] == 8 and sch["steps"] == 8


def test_bad_settings_are_named(tmp_path):
    with pytest.raises(ValueError, match="nan_policy"):
        _fit(tmp_path, tiny_params(nan_policy="ignore"))
    with pytest.raises(ValueError, match="train.amp"):
        _fit(tmp_path, tiny_params(amp="fp8"))
    p = tiny_params()
    p["phase1"]["scheduler"] = "step"
    with pytest.raises(ValueError, match="scheduler"):
        _fit(tmp_path, p)


def test_dvclive_does_not_touch_dvc_yaml(tmp_path):
    _fit(tmp_path)
    assert not (tmp_path / "dvc.yaml").exists()
    metrics = json.loads((tmp_path / "dvclive/phase1/metrics.json").read_text())
    assert metrics["step"] == 1 and {"train_loss", "val_loss", "lr", "samples_per_s"} <= set(metrics)


def test_channels_last_is_ignored_on_the_cpu_under_autocast(tmp_path, capsys):
    """PyTorch's CPU convolution backward in channels-last under bf16 autocast reads memory it never wrote (NaN weight
    gradients in about half the runs once freed memory holds NaN): the engine says so and trains without it there."""
    p = tiny_params(amp="bf16", channels_last=True)
    _, s = _fit(tmp_path, params=p)
    assert "train.channels_last is ignored on the CPU under bfloat16 autocast" in capsys.readouterr().err
    assert s["amp_dtype"] == "bfloat16" and all(torch.isfinite(torch.tensor(h["train_loss"])) for h in s["history"])
