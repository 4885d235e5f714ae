"""One device and precision policy: `evaluate`, `predict` and the reports run the model through
`nowcast.inference.Forecaster` with `train.device` and `train.amp`, so the forecasts scored are the ones
delivered. The bf16 path an H100/H200 takes runs on the CPU too (forced with `train.amp: bf16`)."""

import numpy as np
import pytest
import torch

from nowcast.data import load_cache
from nowcast.evaluate import evaluate, read_window
from nowcast.inference import Forecaster, load_model
from nowcast.models import get_model
from nowcast.predict import pool_inputs, predict_test_events, run_model


@pytest.fixture
def checkpoint(tiny_cache, tmp_path):
    cache = load_cache(tiny_cache)
    kwargs = dict(n_levels=int(cache.shape[1]), n_in=cache.n_in, n_out=cache.n_out, hidden=[4, 4], groups=2)
    torch.manual_seed(0)
    model = get_model("AdvectionNet", **kwargs)
    with torch.no_grad():   # a model that moves and changes the echoes, so that the forecasts are not trivial
        model.velocity.bias.copy_(torch.tensor([0.7, -0.3])); model.tendency.bias.fill_(0.01)
    path = tmp_path / "phase3_best.pt"
    torch.save({"model": model.state_dict(), "model_config": {"name": "AdvectionNet", "kwargs": kwargs},
                "params": {"prepare": {"pool": 2}}}, path)
    return path


@pytest.mark.parametrize("amp", ["auto", "bf16"])
def test_evaluate_and_predict_run_the_model_alike(amp, tiny_params, tiny_cache, checkpoint, tmp_path):
    params = {**tiny_params, "train": {**tiny_params["train"], "device": "auto", "amp": amp},
              "evaluate": {"max_windows": 2, "fss_scales": [1], "per_level": False},
              "predict": {"max_forecasts": 1, "upsample": False}}
    res = evaluate(params, checkpoint, reports_dir=tmp_path / "r")
    rep = predict_test_events(params, checkpoint, tmp_path / "fc", report_path=tmp_path / "predict.json")
    want = "bf16" if amp == "bf16" else ("bf16" if torch.cuda.is_available() else "fp32")
    assert (res.precision, rep["precision"]) == (want, want)
    assert res.device == rep["device"]
    # the same window through both paths gives the same forecast (predict reads the raw files, evaluate the cache)
    cache = load_cache(tiny_cache)
    start = int(cache.windows["test"][0])
    w = read_window(cache, start)
    scored = res.forecasters["model"](w)
    model, ck = load_model(checkpoint)
    from nowcast.io import read_scan
    x, _ = pool_inputs([read_scan(p) for p in cache.source_paths[start:start + cache.n_in]], {"prepare": tiny_params["prepare"]})
    delivered = run_model(model, x, {"prepare": tiny_params["prepare"], "train": params["train"]})
    tol = 1.0 if want == "bf16" else 1e-3      # bf16 keeps about three significant digits of normalised values
    np.testing.assert_allclose(delivered, scored, atol=tol)


def test_forecaster_takes_the_policy_from_params():
    f = Forecaster(torch.nn.Conv3d(1, 1, 1), device="cpu", amp="bf16")
    assert (f.device.type, f.precision) == ("cpu", "bf16")
    assert Forecaster(torch.nn.Conv3d(1, 1, 1), device="cpu", amp="auto").precision == "fp32"   # CPU: float32
    with pytest.raises(ValueError, match="train.amp"):
        Forecaster(torch.nn.Conv3d(1, 1, 1), device="cpu", amp="fp8")
