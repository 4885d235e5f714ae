"""Tiny stand-ins for the training tests: random windows, a small Conv3d model, a masked MSE.
Also runnable as a script (the SIGTERM and DDP tests start it in a subprocess or under torchrun)."""
import json, os, sys, time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import TensorDataset


def tiny_windows(n=8, n_in=4, n_out=3, z=2, hw=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, n_in, z, hw, hw, generator=g)
    y = x[:, -1:].repeat(1, n_out, 1, 1, 1).roll(1, dims=-1)
    return TensorDataset(x, y, torch.ones_like(y, dtype=torch.bool))


class TinyNet(nn.Module):
    def __init__(self, n_in=4, n_out=3, dropout=0.1):
        super().__init__()
        self.conv = nn.Conv3d(n_in, 8, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Conv3d(8, n_out, 3, padding=1)

    def forward(self, x):
        return self.head(self.drop(torch.relu(self.conv(x))))


def mse_loss(pred, target, valid):
    err = (pred.float() - target) ** 2
    return (err * valid).sum() / valid.sum().clamp(min=1), {}


def tiny_params(**train):
    p = {"seed": 0, "model": {"name": "TinyNet"},
         "train": {"batch_size": 2, "accum_steps": 1, "num_workers": 0, "amp": "auto", "weight_decay": 0.0,
                   "warmup_steps": 2, "keep_last": 2, "nan_policy": "error", "device": "cpu",
                   "ckpt_dir": "checkpoints", "log_dir": "dvclive"},
         "phase1": {"epochs": 2, "lr": 1e-2, "scheduler": "none", "grad_clip": 1.0, "init_from": None}}
    p["train"].update(train)
    return p


if __name__ == "__main__":
    # python _train_standins.py ROOT MODE [n_windows]; MODE "slow" prints STEP lines and sleeps (SIGTERM test),
    # "ckpt" does the same with a mid-epoch checkpoint every 2 steps (kill -9 test), "plain" just trains (DDP test),
    # "still" trains an AdvectionNet without growth (DDP test).
    from nowcast.train import fit
    root, mode = Path(sys.argv[1]), sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    torch.set_num_threads(1)
    torch.manual_seed(0)

    def on_step(epoch, batch, step):
        if mode in ("slow", "ckpt"):
            print(f"STEP {epoch} {batch}", flush=True)
            time.sleep(0.3)
        return False

    if mode == "still":   # AdvectionNet that only moves the echoes (growth off): its decoder is frozen, not left gradless
        from nowcast.models import AdvectionNet
        net = AdvectionNet(n_levels=2, n_in=4, n_out=3, hidden=[4, 4], groups=2, motion_prior="lk", growth=False)
    else:
        net = TinyNet()
    params = tiny_params(checkpoint_every_steps=2) if mode == "ckpt" else tiny_params()
    summary = fit(net, tiny_windows(n), tiny_windows(4, seed=1), mse_loss, params, "phase1",
                  root=root, on_step=on_step)
    rank = int(os.environ.get("RANK", 0))
    torch.save(net.state_dict(), root / f"weights_rank{rank}.pt")   # each rank's own copy, for the DDP test
    print(f"SUMMARY rank {rank} world {summary['world_size']}", flush=True)
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
