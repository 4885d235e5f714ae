"""Scans that broke the reader before issue 11, for the io and prepare tests: the embedded archive built
exactly as `nowcast synth --params params.yaml --out DIR` builds it, and the fuzz campaign's hang case."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
HANG_FILE = "2024-05-07_advection_01/20240507_194500.nc"  # the fuzz campaign's hang case (issue 11)
HANG_ZEROS = (11_115, 3_464)  # offset and length of the bytes zeroed in it


def embedded_archive(out: Path) -> Path:
    "The embedded archive exactly as `nowcast synth --params params.yaml --out out` builds it (about 2 s)."
    from nowcast.synthetic import make_archive
    make_archive(out, **yaml.safe_load((ROOT / "params.yaml").read_text())["synthetic"])
    return out


def hang_case(archive: Path, path: Path) -> Path:
    "Write to `path` the scan that makes `netCDF4.Dataset` never return: HANG_FILE with HANG_ZEROS zeroed."
    data = bytearray((archive / HANG_FILE).read_bytes())
    at, k = HANG_ZEROS
    data[at:at + k] = bytes(k)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
    return path
