"""DistributedDataParallel on CPU: two processes under torchrun (gloo) train one tiny phase."""
import os, subprocess, sys
from pathlib import Path

import torch

from nowcast.train import load_checkpoint

HERE = Path(__file__).resolve().parent


def test_two_process_gloo_run(tmp_path):
    "Both ranks finish with identical weights, equal to the checkpoint rank 0 wrote; each rank saw half the windows."
    torchrun = Path(sys.executable).with_name("torchrun")
    assert torchrun.exists(), f"{torchrun}: torchrun comes with torch"
    env = {**os.environ, "PYTHONPATH": str(HERE), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2",
                          str(HERE / "_train_standins.py"), str(tmp_path), "plain", "8"],
                         capture_output=True, text=True, env=env, timeout=240)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "SUMMARY rank 0 world 2" in res.stdout and "SUMMARY rank 1 world 2" in res.stdout
    w0 = torch.load(tmp_path / "weights_rank0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "weights_rank1.pt", weights_only=True)
    ck = load_checkpoint(tmp_path / "checkpoints/phase1_last.pt")
    assert ck["world_size"] == 2 and ck["finished"] is True and len(ck["rng"]) == 2   # each rank's RNG kept
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k
        assert torch.equal(w0[k], ck["model"][k]), k
    # 8 windows, batch 2 per rank, 2 ranks: 2 optimizer steps per epoch, 2 epochs
    assert ck["step"] == 4


def test_two_process_run_of_an_advectionnet_without_growth(tmp_path):
    """`model.growth: false` (params-real) under DDP: the unused decoder would stop DDP at the second step ('parameters
    that were not used in producing loss'); frozen, it trains, and stays what it was."""
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "PYTHONPATH": str(HERE), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2",
                          str(HERE / "_train_standins.py"), str(tmp_path), "still", "8"],
                         capture_output=True, text=True, env=env, timeout=240)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    ck = load_checkpoint(tmp_path / "checkpoints/phase1_last.pt")
    assert ck["world_size"] == 2 and ck["step"] == 4
    assert all(float(v.abs().max()) == 0 for k, v in ck["model"].items() if k.startswith("tendency."))   # never trained
