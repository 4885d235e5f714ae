"""The two parameter files: the embedded default and the users' full-scale curriculum."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _keys(d, prefix=""):
    "Every key path of a nested dict."
    out = set()
    for k, v in d.items():
        out.add(prefix + k)
        if isinstance(v, dict) and k != "events": out |= _keys(v, f"{prefix}{k}.")
    return out


def _load(name):
    return yaml.safe_load((ROOT / name).read_text())


def test_full_differs_only_in_values():
    "params-full.yaml and params-real.yaml have exactly the keys of params.yaml, so switching is one copy."
    assert _keys(_load("params.yaml")) == _keys(_load("params-full.yaml"))
    assert _keys(_load("params.yaml")) == _keys(_load("params-real.yaml"))


def test_real_trains_on_the_imported_radar():
    "params-real.yaml: the archive stage imports ../shared/real-radar, and the model is trained for one time step and pixel."
    p = _load("params-real.yaml")
    assert p["data"]["raw_dir"] == p["radar_import"]["out_dir"] and p["radar_import"]["source_dir"] == "../shared/real-radar"
    assert (p["prepare"]["time_step_s"], p["prepare"]["pixel_km"]) == (300, 1.0)
    assert "sprog" in p["evaluate"]["methods"] and p["train"]["select_by"] == "csi" and p["train"]["crop"] > 0


def test_full_is_the_users_curriculum():
    "The full-scale file holds the users' values for each phase and the data."
    p = _load("params-full.yaml")
    assert (p["synthetic"]["nx"], p["synthetic"]["ny"], p["synthetic"]["nz"], p["prepare"]["pool"]) == (500, 500, 18, 2)
    # the model: AdvectionNet, which moves storms (the users' ConvLSTM3D_Enhanced stays a `model.name` away; see the
    # closing figures: at equal steps it stayed near persistence, and its full-scale step is 11x slower)
    assert (p["prepare"]["n_in"], p["prepare"]["n_out"], p["model"]["name"]) == (8, 7, "AdvectionNet")
    assert 16 <= p["train"]["batch_size"] <= 32
    ph1, ph2, ph3 = p["phase1"], p["phase2"], p["phase3"]
    assert (ph1["epochs"], ph1["lr"], ph1["high_penalty_weight"], ph1["ssim_weight"]) == (25, 1e-3, 100, 0.1)
    assert (ph2["epochs"], ph2["lr"], ph2["scheduler"], ph2["patience"], ph2["high_penalty_weight"], ph2["ssim_weight"]) == (75, 1e-4, "plateau", 4, 50, 20)
    assert (ph3["epochs"], ph3["lr"], ph3["scheduler"], ph3["high_penalty_weight"], ph3["ssim_weight"], ph3["grad_clip"]) == (100, 1e-5, "cosine", 25, 30, 0.1)
    assert ph2["init_from"].endswith("phase1_best.pt") and ph3["init_from"].endswith("phase2_best.pt")
    # 250 x 250 after pooling must divide by the model's total downsampling
    import math
    assert 250 % math.prod(p["model"]["downsample"]) == 0
