"""Scans that broke the reader before issue 11, for the io and prepare tests: a few events of the embedded
archive built as `nowcast synth` builds it, and the fuzz campaign's hang case.

`data/hang_case.nc` is the campaign's file that hangs the NetCDF library: the embedded archive's
`2024-05-07_advection_01/20240507_194500.nc` as the generator wrote it then (before the archive moved to
LROSE's layout), with 3,464 bytes zeroed at offset 11,115. It is kept as a file because the hang depends
on the exact HDF5 layout of those bytes."""
import shutil
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
HANG_CASE = ROOT / "tests" / "data" / "hang_case.nc"
SEED_EVENT = "2024-05-07_advection_01"   # an event of the embedded archive with scans at 19:30 ... 19:50


def embedded_archive(out: Path) -> Path:
    "Four events of the embedded archive (its params, fewer events, 30 scans each), as `nowcast synth` writes them."
    from nowcast.synthetic import make_archive
    syn = {k: v for k, v in yaml.safe_load((ROOT / "params.yaml").read_text())["synthetic"].items() if k != "out_dir"}
    make_archive(out, **{**syn, "events": {"advection": 2, "multicell": 1, "supercell": 1}, "scans_per_event": 30})
    return out


def scan_at(archive: Path, event: str, hhmm: str) -> Path:
    "The file of an event's scan at `hhmm` (LROSE's layout: `<event>/yyyymmdd/hhmmss.nc`)."
    return next((archive / event).rglob(f"{hhmm}00.nc"))


def hang_case(path: Path) -> Path:
    "Write to `path` the scan that makes `netCDF4.Dataset` never return (a copy of `data/hang_case.nc`)."
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HANG_CASE, path)
    return path
