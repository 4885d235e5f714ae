"`nowcast predict`: TITAN forecast files from a checkpoint and the latest scans (tiny grids, CPU)."
import json, re
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import torch

from nowcast.io import Grid, ScanError, azimuthal_equidistant, read_scan, write_grid_netcdf
from nowcast.predict import (demo_scans, cli_main, forecast_scans, load_forecaster, predict, upsample_dbz,
                             write_forecast)
from nowcast.probability import ProbabilityHead, start_weights
from nowcast.read import read_probabilities

N_IN, N_OUT, NZ, NY, NX = 4, 3, 2, 16, 16
PARAMS = {"data": {"field": "DBZ"}, "prepare": {"pool": 2, "pool_space": "dbz", "dbz_min": -10.0, "dbz_max": 70.0,
                                               "dbz_step": 0.5, "n_in": N_IN, "n_out": N_OUT, "max_gap_s": 450}}
TITAN_PATH = re.compile(r"(^|/)\d{8}/g_\d{6}/f_\d{8}\.nc$")


def _model():
    from nowcast.models import get_model
    torch.manual_seed(0)
    kwargs = dict(n_levels=NZ, n_in=N_IN, n_out=N_OUT, hidden=[4, 4], groups=1)
    return get_model("ConvLSTM3D_Enhanced", **kwargs), {"name": "ConvLSTM3D_Enhanced", "kwargs": kwargs}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    "A checkpoint following the training contract, with random weights that change the forecast."
    model, cfg = _model()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))  # move away from the zero-initialised (persistence) head
    path = tmp_path_factory.mktemp("ckpt") / "phase3_best.pt"
    torch.save({"model": model.state_dict(), "model_config": cfg, "params": PARAMS, "phase": "phase3",
                "epoch": 1, "step": 1, "best_val": 0.0}, path)
    return path


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    "Five scans of a moving blob; the last one has a missing sector."
    folder = tmp_path_factory.mktemp("raw")
    paths = demo_scans(folder, n=N_IN + 1, ny=NY, nx=NX, nz=NZ)
    last = read_scan(paths[-1])
    missing = np.zeros(last.grid.shape, bool)
    missing[:, :5, 11:] = True
    write_grid_netcdf(paths[-1], np.where(missing, np.nan, last.dbz), missing, last.time, last.grid, "DBZ",
                      sensor=last.sensor, time_bounds=last.time_bounds)
    return paths


@pytest.fixture(scope="module")
def written(checkpoint, scans, tmp_path_factory):
    out = tmp_path_factory.mktemp("forecasts")
    return predict(checkpoint, scans[0].parent, out, device="cpu"), out


THRESHOLDS = [20.0, 35.0, 40.0]


def _head(n_out=N_OUT, radius=1):
    "The untrained start of a probability head: the neighbourhood fraction of the forecast (radius in pooled pixels)."
    r = np.full((len(THRESHOLDS), n_out), radius, np.int64)
    return ProbabilityHead(THRESHOLDS, r, start_weights(r))


@pytest.fixture(scope="module")
def head_path(tmp_path_factory):
    "A probability head in a folder of its own (not beside the checkpoint, where the CLI would pick it up by default)."
    return _head().save(tmp_path_factory.mktemp("head") / "probability.pt")


@pytest.fixture(scope="module")
def written_p(checkpoint, scans, head_path, tmp_path_factory):
    "Forecast files with exceedance probabilities, through the command."
    out = tmp_path_factory.mktemp("forecasts_p")
    assert cli_main(["--model-path", str(checkpoint), "--input", str(scans[0].parent), "--out", str(out),
                     "--probability", str(head_path), "--device", "cpu"]) == 0
    return sorted(out.rglob("f_*.nc")), out


def test_files_follow_titans_forecast_layout(written, scans):
    files, out = written
    assert len(files) == N_OUT
    rel = [f.relative_to(out).as_posix() for f in files]
    assert all(TITAN_PATH.search(r) for r in rel), rel
    assert rel == [f"20240601/g_122000/f_{300 * k:08d}.nc" for k in (1, 2, 3)]  # issue = last scan, lead = k x 300 s
    assert not any(bad in r.lower() for r in rel for bad in ("cfrad", "odim", ".uf", "swp."))


def test_files_read_back_to_the_forecast_within_packing_precision(written, checkpoint, scans):
    files, _ = written
    model, ckpt = load_forecaster(checkpoint)
    fc = forecast_scans(model, ckpt["params"], scans[0].parent, device="cpu")
    last = read_scan(scans[-1])
    for k, f in enumerate(files):
        back = read_scan(f, "DBZ")
        np.testing.assert_array_equal(back.missing, last.missing)  # the last input scan's mask, full resolution
        ok = ~back.missing
        assert np.abs(back.dbz[ok] - fc.dbz[k][ok]).max() <= 0.005 + 1e-6
        assert back.grid.matches(last.grid)
        assert back.time == last.time + np.timedelta64(300 * (k + 1), "s")
        assert back.dbz[ok].min() >= -10.0 and back.dbz[ok].max() <= 70.0


def test_forecasts_carry_the_radar_position_and_time_bounds(written, scans):
    """LROSE shows sensor 0, 0 and no time_begin/end without them: every forecast copies the last input scan's
    radar position, and spans the last input scan's volume moved forward by its lead."""
    files, _ = written
    last = read_scan(scans[-1])
    assert last.sensor == pytest.approx((39.87, -104.76, 1.6)) and last.time_bounds[1] - last.time_bounds[0] == np.timedelta64(270, "s")
    for k, f in enumerate(files):
        back = read_scan(f)
        lead = np.timedelta64(300 * (k + 1), "s")
        assert back.sensor == pytest.approx(last.sensor)
        assert back.time_bounds == (last.time_bounds[0] + lead, last.time_bounds[1] + lead)
        assert back.time_bounds[1] == back.time  # the input's convention: a volume is stamped with its end
        with netCDF4.Dataset(f) as ds:
            assert ds["time"].bounds == "time_bounds" and ds["mdv_master_header"].ndim == 0
            assert ds["mdv_master_header"].mdv_sensor_lat == pytest.approx(39.87)


def test_inputs_without_position_or_bounds_give_the_cadence_interval(checkpoint, tmp_path):
    paths = demo_scans(tmp_path / "raw", n=N_IN, ny=NY, nx=NX, nz=NZ, sensor=None, bounds=False)
    files = predict(checkpoint, paths, tmp_path / "out", device="cpu")
    back = read_scan(files[1])
    assert back.sensor is None
    assert back.time_bounds == (back.time - np.timedelta64(300, "s"), back.time)


def test_the_model_actually_changes_the_forecast(written, scans):
    files, _ = written
    last, first_lead = read_scan(scans[-1]), read_scan(files[0])
    ok = ~last.missing
    assert np.abs(first_lead.dbz[ok] - last.dbz[ok]).max() > 0.1  # not a copy of the input


def test_the_four_lrose_reader_checks(written):
    files, _ = written
    with netCDF4.Dataset(files[-1]) as ds:
        field = ds["DBZ"]
        tdim, zdim, ydim, xdim = field.dimensions
        assert ds[xdim].standard_name == "projection_x_coordinate" and ds[xdim].units == "km"
        assert ds[ydim].standard_name == "projection_y_coordinate" and ds[ydim].units == "km"
        assert ds["time"].units.startswith("seconds since")
        gm = ds[field.grid_mapping]
        assert gm.grid_mapping_name == "azimuthal_equidistant"
        assert gm.latitude_of_projection_origin == pytest.approx(39.87)
        assert gm.longitude_of_projection_origin == pytest.approx(-104.76)
        assert ds[zdim].positive == "up" and ds[zdim].units == "km"
        # forecast marks, packing and provenance
        assert float(ds["forecast_period"][...]) == 900.0
        assert float(ds["time"][0]) - float(ds["forecast_reference_time"][...]) == 900.0
        assert field.dtype == np.int16 and field._FillValue == -32768 and field.units == "dBZ"
        assert ds.Conventions == "CF-1.6"
        assert "ConvLSTM3D_Enhanced" in ds.source
        assert re.search(r"phase3_best\.pt sha256:[0-9a-f]{64}$", ds.nowcast_checkpoint)
        assert json.loads(ds.nowcast_params)["prepare"]["pool"] == 2
        assert json.loads(ds.nowcast_model)["name"] == "ConvLSTM3D_Enhanced"


@pytest.mark.parametrize("files", ["written", "written_p"])
def test_passes_the_cf_compliance_checker(files, request, tmp_path):
    # The packaged CF standard-name table is used (no download): the checker only fetches another table when a
    # file's `standard_name_vocabulary` names a different version, and ours sets none.
    from compliance_checker.runner import CheckSuite, ComplianceChecker
    written = request.getfixturevalue(files)
    if files == "written_p":
        assert read_probabilities(written[0][0])  # the file checked has them
    CheckSuite.load_all_available_checkers()
    report = tmp_path / "cf.json"
    passed, errored = ComplianceChecker.run_checker(str(written[0][0]), ["cf:1.6"], 0, "strict",
                                                    output_filename=str(report), output_format="json")
    results = json.loads(report.read_text())["cf:1.6"]
    failures = [(r["name"], r["msgs"]) for level in ("high_priorities", "medium_priorities", "low_priorities")
                for r in results[level] if r["value"][0] < r["value"][1]]
    assert not errored and passed, failures
    assert failures == []  # strict: not even a warning


def test_passes_the_compliance_checker_command(written, tmp_path):
    """The console script: `--test cf:1.6 -c strict` (the version the files declare) passes outright; `--test cf`
    (the latest, CF-1.11) has no errors (high priority: exit 0 under `-c lenient`), and its only warnings
    (medium priority, which make the default `-c normal` exit 1) are the two that only CF-1.11 asks for."""
    import shutil, subprocess, sys
    exe = shutil.which("compliance-checker") or str(Path(sys.executable).parent / "compliance-checker")
    f = str(written[0][-1])
    run = lambda *a: subprocess.run([exe, *a, f], capture_output=True, text=True, timeout=120)
    res = run("--test", "cf:1.6", "-c", "strict")
    assert res.returncode == 0 and "All tests passed" in res.stdout, res.stdout + res.stderr
    assert run("--test", "cf", "-c", "lenient").returncode == 0
    out = tmp_path / "cf.json"
    run("--test", "cf", "-f", "json", "-o", str(out))
    report = next(iter(json.loads(out.read_text()).values()))
    assert [r for r in report["high_priorities"] if r["value"][0] < r["value"][1]] == []
    warnings = [m for r in report["medium_priorities"] if r["value"][0] < r["value"][1] for m in r["msgs"]]
    assert all("CF-1.11" in m or "units_metadata" in m for m in warnings), warnings


def test_upsampling_invents_no_echo_and_no_negative_dbz():
    rng = np.random.default_rng(0)
    pooled = np.full((N_OUT, NZ, 8, 8), -10.0, np.float32)
    pooled[:, :, 2:5, 3:6] = rng.uniform(20, 65, (N_OUT, NZ, 3, 3))  # cores in a no-echo field
    up = upsample_dbz(pooled, (16, 16))
    assert up.shape == (N_OUT, NZ, 16, 16)
    nearest = np.repeat(np.repeat(pooled, 2, -2), 2, -1)
    assert (up[nearest <= -10.0] == -10.0).all()         # no echo where the pooled forecast had none
    assert up.max() <= pooled.max() + 1e-4 and up.min() >= -10.0
    positive = np.full((1, 1, 6, 6), 0.0, np.float32)
    positive[0, 0, 2:4, 2:4] = 60.0
    assert upsample_dbz(positive, (12, 12)).min() >= 0.0  # bicubic alone undershoots below 0 dBZ here


def test_no_upsample_writes_the_pooled_grid(checkpoint, scans, tmp_path):
    assert cli_main(["--model_path", str(checkpoint), "--input", *map(str, scans[1:]), "--out", str(tmp_path),
                     "--upsample", "False", "--params", "/nonexistent.yaml"]) == 2  # a named params file must exist
    assert cli_main(["--model_path", str(checkpoint), "--input", *map(str, scans[1:]), "--out", str(tmp_path),
                     "--upsample", "False", "--device", "cpu"]) == 0
    files = sorted(tmp_path.rglob("f_*.nc"))
    assert len(files) == N_OUT
    back = read_scan(files[0])
    assert back.grid.shape == (NZ, NY // 2, NX // 2)
    np.testing.assert_allclose(back.grid.x_km, np.arange(NX // 2) * 2.0 + 0.5)


def test_wrong_grid_is_a_clear_error_naming_the_files(checkpoint, scans, tmp_path):
    other = read_scan(scans[-1])
    grid = Grid(other.grid.x_km + 1.0, other.grid.y_km, other.grid.z_km, other.grid.projection)
    odd = write_grid_netcdf(tmp_path / "20240601_122500.nc", other.dbz, other.missing,
                            other.time + np.timedelta64(300, "s"), grid, "DBZ")
    with pytest.raises(ScanError, match="grid") as err:
        predict(checkpoint, [*scans, odd], tmp_path / "out", device="cpu")
    assert str(err.value).startswith(str(odd)) and str(scans[2]) in str(err.value)
    assert not (tmp_path / "out").exists()


def test_too_few_scans_is_a_clear_error(checkpoint, scans, tmp_path, capsys):
    with pytest.raises(ScanError, match="needs 4 scans, got 2") as err:
        predict(checkpoint, scans[:2], tmp_path / "out", device="cpu")
    assert str(scans[0]) in str(err.value) and str(scans[1]) in str(err.value)
    assert cli_main(["--model-path", str(checkpoint), "--input", *map(str, scans[:2]), "--out", str(tmp_path)]) == 1
    assert "needs 4 scans" in capsys.readouterr().err


def test_a_gap_in_the_inputs_is_refused(checkpoint, scans, tmp_path):
    with pytest.raises(ScanError, match="max_gap_s") as err:
        predict(checkpoint, [scans[0], *scans[2:]], tmp_path / "out", device="cpu")
    assert str(scans[2]) in str(err.value) and str(scans[0]) in str(err.value)


def test_same_inputs_give_identical_files(checkpoint, scans, head_path, tmp_path):
    a = predict(checkpoint, scans, tmp_path / "a", device="cpu")
    b = predict(checkpoint, scans, tmp_path / "b", device="cpu")
    for fa, fb in zip(a, b):
        np.testing.assert_array_equal(read_scan(fa).dbz, read_scan(fb).dbz)
    c = predict(checkpoint, scans, tmp_path / "c", device="cpu", probability_path=head_path)
    d = predict(checkpoint, scans, tmp_path / "d", device="cpu", probability_path=head_path)
    assert [f.read_bytes() for f in c] == [f.read_bytes() for f in d]  # byte for byte, probabilities and all


def test_the_predict_stage_forecasts_the_test_events(checkpoint, tmp_path, monkeypatch):
    from nowcast.data import load_cache, prepare
    raw = tmp_path / "raw"
    for day in range(5):  # five events a day apart: 3 train, 1 val, 1 test
        demo_scans(raw / f"event{day}", n=8, ny=NY, nx=NX, nz=NZ, start=f"2024-06-0{day + 1}T12:00:00")
    prep = {k: v for k, v in PARAMS["prepare"].items()}
    prepare(raw, tmp_path / "cache", **prep)
    params = {**PARAMS, "prepare": {**prep, "cache_dir": str(tmp_path / "cache")},
              "predict": {"out_dir": str(tmp_path / "forecasts"), "upsample": True, "max_forecasts": 1}}
    (tmp_path / "params.yaml").write_text(json.dumps(params))  # JSON is YAML
    monkeypatch.chdir(tmp_path)
    assert cli_main(["--test-events", "--params", "params.yaml", "--model-path", str(checkpoint), "--device", "cpu"]) == 0
    report = json.loads((tmp_path / "reports" / "predict.json").read_text())
    cache = load_cache(tmp_path / "cache")
    test_events = {cache.event_names[cache.scan_event[s]] for s in cache.windows["test"]}
    assert report["n_forecasts"] == len(test_events) == 1 and report["n_files"] == N_OUT
    fc = report["forecasts"][0]
    assert fc["issue_time"] == "2024-06-05T12:20:00"  # the last test window (scans 1..7): inputs 1..4
    assert [Path(f).name for f in fc["files"]] == [f"f_{300 * k:08d}.nc" for k in (1, 2, 3)]
    assert all(Path(f).is_file() and TITAN_PATH.search(Path(f).as_posix()) for f in fc["files"])
    assert report["probabilities"] == {"written": False, "head": None, "head_sha256": None, "thresholds_dbz": [],
                                       "variables": []}
    # a head beside the checkpoint is used by default, and the report says so
    models = tmp_path / "models"; models.mkdir()
    (models / "phase3_best.pt").write_bytes(Path(checkpoint).read_bytes())
    _head().save(models / "probability.pt")
    assert cli_main(["--test-events", "--params", "params.yaml", "--model-path", str(models / "phase3_best.pt"),
                     "--device", "cpu", "--out", "with_p"]) == 0
    report = json.loads((tmp_path / "reports" / "predict.json").read_text())
    assert report["probabilities"]["written"] and report["probabilities"]["head"] == str(models / "probability.pt")
    assert report["probabilities"]["thresholds_dbz"] == THRESHOLDS
    assert report["probabilities"]["variables"] == ["prob_ge_20dbz", "prob_ge_35dbz", "prob_ge_40dbz"]
    assert re.fullmatch(r"[0-9a-f]{64}", report["probabilities"]["head_sha256"])
    for f in report["forecasts"][0]["files"]:
        assert list(read_probabilities(f)) == THRESHOLDS


def test_missing_checkpoint_or_empty_folder_is_a_clear_error(checkpoint, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ScanError, match="needs 4 scans, got 0") as err:
        predict(checkpoint, empty, tmp_path / "out", device="cpu")
    assert str(err.value).startswith(str(empty))
    missing = tmp_path / "nope.pt"
    assert cli_main(["--model-path", str(missing), "--input", str(empty), "--out", str(tmp_path / "out")]) == 1
    assert str(missing) in capsys.readouterr().err


def test_a_scan_that_hangs_the_netcdf_library_is_a_clear_error(checkpoint, scans, tmp_path, capsys):
    "Each input is read in a reader process with `data.read_timeout_s`: a file that hangs netCDF4 stops nothing."
    import time
    from _bad_scans import hang_case
    bad = hang_case(tmp_path / "20240601_122500.nc")
    (tmp_path / "params.yaml").write_text(json.dumps({"data": {"read_timeout_s": 2}}))
    t0 = time.monotonic()
    assert cli_main(["--model-path", str(checkpoint), "--input", *map(str, scans), str(bad), "--out", str(tmp_path / "out"),
                     "--params", str(tmp_path / "params.yaml"), "--device", "cpu"]) == 1
    assert time.monotonic() - t0 < 30
    err = capsys.readouterr().err
    assert f"{bad}: reading took longer than 2 s" in err
    assert not (tmp_path / "out").exists()


def test_the_command_writes_probabilities_read_back_in_range(written_p, checkpoint, scans, head_path):
    "One variable per threshold, 2-D on the input grid, in [0, 1], unobserved where the last scan saw no level."
    files, _ = written_p
    assert len(files) == N_OUT
    last = read_scan(scans[-1])
    unobserved = last.missing.all(0)
    assert unobserved.any()
    model, ckpt = load_forecaster(checkpoint)
    fc = forecast_scans(model, ckpt["params"], scans[0].parent, device="cpu", head=ProbabilityHead.load(head_path))
    for k, f in enumerate(files):
        probs = read_probabilities(f)
        assert list(probs) == THRESHOLDS
        for t, p in probs.items():
            assert p.shape == (NY, NX) and p.dtype == np.float32
            np.testing.assert_array_equal(np.isnan(p), unobserved)
            assert 0.0 <= np.nanmin(p) and np.nanmax(p) <= 1.0
            np.testing.assert_array_equal(p[~unobserved], fc.probabilities[t][k][~unobserved])
        assert (np.nan_to_num(probs[40.0]) <= np.nan_to_num(probs[20.0]) + 1e-6).all()  # stronger is rarer here
        with netCDF4.Dataset(f) as ds:
            v = ds["prob_ge_35dbz"]
            assert v.dimensions == ("time", "y0", "x0") and v.units == "1" and v.grid_mapping == "grid_mapping_0"
            assert v.long_name == f"probability that the column-maximum reflectivity reaches 35 dBZ at t+{5 * (k + 1)} min"
            assert float(v.threshold_dbz) == 35.0 and (float(v.valid_min), float(v.valid_max)) == (0.0, 1.0)
            assert ds.nowcast_probability.startswith(f"{head_path} sha256:")
        back = read_scan(f)  # the reflectivity reads as before
        assert back.grid.matches(last.grid)


def test_a_file_without_a_head_has_no_probabilities(written, checkpoint, scans, head_path, tmp_path):
    files, _ = written
    assert all(read_probabilities(f) == {} for f in files)
    with netCDF4.Dataset(files[0]) as ds:
        assert not [n for n in ds.variables if n.startswith("prob")] and "nowcast_probability" not in ds.ncattrs()
    # beside the checkpoint: used by default; `--probability none` turns it off
    models = tmp_path / "models"; models.mkdir()
    (models / "phase3_best.pt").write_bytes(Path(checkpoint).read_bytes())
    _head().save(models / "probability.pt")
    args = ["--model-path", str(models / "phase3_best.pt"), "--input", *map(str, scans[1:]), "--device", "cpu"]
    assert cli_main([*args, "--out", str(tmp_path / "default")]) == 0
    assert list(read_probabilities(next((tmp_path / "default").rglob("f_*.nc")))) == THRESHOLDS
    assert cli_main([*args, "--out", str(tmp_path / "off"), "--probability", "none"]) == 0
    assert read_probabilities(next((tmp_path / "off").rglob("f_*.nc"))) == {}


def test_no_upsample_gives_the_heads_probabilities_on_the_pooled_grid(checkpoint, scans, head_path, tmp_path):
    "The untrained head is the neighbourhood fraction (radius 1) of the forecast's column maximum, on the pooled grid."
    from nowcast.probability import EPS, neighbourhood_fraction
    files = predict(checkpoint, scans[1:], tmp_path, upsample=False, device="cpu", probability_path=head_path)
    model, ckpt = load_forecaster(checkpoint)
    cmax = forecast_scans(model, ckpt["params"], scans[1:], upsample=False, device="cpu").dbz.max(axis=1)
    for k, f in enumerate(files):
        probs = read_probabilities(f)
        unobserved = read_scan(f).missing.all(0)
        assert unobserved.any() and probs[35.0].shape == (NY // 2, NX // 2)
        for t, p in probs.items():
            want = np.clip(neighbourhood_fraction(cmax[k] >= t, 1), EPS, 1 - EPS)
            np.testing.assert_allclose(p[~unobserved], want[~unobserved], atol=1e-6)
            assert np.isnan(p[unobserved]).all()


@pytest.mark.parametrize("bad", ["garbage", "missing", "checkpoint", "leads"])
def test_a_bad_head_is_a_clear_error_naming_it(bad, checkpoint, scans, tmp_path, capsys):
    head = tmp_path / "probability.pt"
    if bad == "garbage": head.write_bytes(b"PK\x03\x04 not a torch file")
    if bad == "checkpoint": head.write_bytes(Path(checkpoint).read_bytes())  # the model, not a head
    if bad == "leads": _head(n_out=N_OUT + 2).save(head)
    expected = {"garbage": "cannot read the probability head", "missing": "no probability head",
                "checkpoint": "not a probability head", "leads": f"head is for {N_OUT + 2} leads; the model forecasts {N_OUT}"}
    assert cli_main(["--model-path", str(checkpoint), "--input", *map(str, scans[1:]), "--out", str(tmp_path / "out"),
                     "--probability", str(head), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert f"nowcast predict: {head}: " in err and expected[bad] in err, err
    assert not (tmp_path / "out").exists()
