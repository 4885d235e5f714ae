"Fetching a user's archive over HTTP: download, checksum, path traversal, HTTP errors, CLI."
import functools, http.server, io, os, shutil, tarfile, threading
from pathlib import Path

import pytest

from nowcast.fetch import FetchError, cli_main, fetch_archive, sha256_file


def _tarball(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    "A local HTTP server on 127.0.0.1 serving a folder with a good and an evil tarball."
    root = tmp_path / "www"
    root.mkdir()
    _tarball(root / "radar.tar.gz", {"radar/20240601/120000.nc": b"a" * 100, "radar/20240601/120500.nc": b"b" * 100})
    _tarball(root / "evil.tar.gz", {"evil/ok.nc": b"1", "/etc/cron.d/evil": b"2"})
    _tarball(root / "dotdot.tar.gz", {"dotdot/ok.nc": b"1", "dotdot/../../escaped.nc": b"2"})
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.timeout = 5
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_http_download_unpacks_the_dataset(served, tmp_path):
    url, root = served
    dest = tmp_path / "datasets"
    folder = fetch_archive(f"{url}/radar.tar.gz", dest, sha256=sha256_file(root / "radar.tar.gz"))
    assert folder == dest / "radar"
    assert (folder / "20240601" / "120000.nc").read_bytes() == b"a" * 100
    assert sorted(p.name for p in dest.iterdir()) == ["radar"]  # no temp download or unpack folder left


def test_checksum_mismatch_is_a_clear_error_and_leaves_nothing(served, tmp_path):
    url, _ = served
    dest = tmp_path / "datasets"
    with pytest.raises(FetchError, match="checksum mismatch"):
        fetch_archive(f"{url}/radar.tar.gz", dest, sha256="0" * 64)
    assert not dest.exists() or list(dest.iterdir()) == []


def test_checksum_mismatch_keeps_an_existing_dest_untouched(served, tmp_path):
    url, _ = served
    dest = tmp_path / "datasets"
    (dest / "other").mkdir(parents=True)
    with pytest.raises(FetchError, match="checksum mismatch"):
        fetch_archive(f"{url}/radar.tar.gz", dest, sha256="0" * 64)
    assert [p.name for p in dest.iterdir()] == ["other"]


@pytest.mark.parametrize("name,member", [("evil.tar.gz", "/etc/cron.d/evil"), ("dotdot.tar.gz", "../../escaped.nc")])
def test_path_traversal_member_is_rejected(served, tmp_path, name, member):
    url, _ = served
    dest = tmp_path / "datasets"
    with pytest.raises(FetchError, match="refusing member") as err:
        fetch_archive(f"{url}/{name}", dest)
    assert member in str(err.value)
    assert not dest.exists()
    assert not (tmp_path / "escaped.nc").exists()


def test_http_404_names_the_url(served, tmp_path):
    url, _ = served
    missing = f"{url}/no-such-archive.tar.gz"
    with pytest.raises(FetchError, match="404") as err:
        fetch_archive(missing, tmp_path / "datasets")
    assert str(err.value).startswith(missing)
    assert not (tmp_path / "datasets").exists()


def test_truncated_download_is_rejected(served, tmp_path):
    url, root = served
    (root / "short.tar.gz").write_bytes((root / "radar.tar.gz").read_bytes()[:60])
    with pytest.raises(FetchError, match="truncated or corrupt"):
        fetch_archive(f"{url}/short.tar.gz", tmp_path / "datasets")


def test_existing_dataset_needs_force(served, tmp_path):
    url, _ = served
    dest = tmp_path / "datasets"
    fetch_archive(f"{url}/radar.tar.gz", dest)
    (dest / "radar" / "stale.nc").write_bytes(b"old")
    with pytest.raises(FetchError, match="already exists"):
        fetch_archive(f"{url}/radar.tar.gz", dest)
    folder = fetch_archive(f"{url}/radar.tar.gz", dest, force=True)
    assert not (folder / "stale.nc").exists()
    assert sorted(p.name for p in dest.iterdir()) == ["radar"]


def test_cli_prints_how_to_point_the_pipeline_at_it(served, tmp_path, capsys):
    url, _ = served
    dest = tmp_path / "datasets"
    assert cli_main(["--source", f"{url}/radar.tar.gz", "--dest", str(dest)]) == 0
    out = capsys.readouterr().out
    assert "data.raw_dir" in out and str(dest / "radar") in out
    assert cli_main(["--source", f"{url}/nope.tar.gz", "--dest", str(dest)]) == 1
    assert "404" in capsys.readouterr().err


def test_pigz_pipeline_unpacks_the_same_files(served, tmp_path, monkeypatch):
    "The `pigz -dc | tar x` branch (a stand-in `pigz` that runs gzip, as pigz is not installed everywhere)."
    gzip = shutil.which("gzip")
    if gzip is None or shutil.which("tar") is None:
        pytest.skip("gzip/tar not on PATH")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "pigz-calls"
    fake = bin_dir / "pigz"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {gzip} "$@"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    url, _ = served
    folder = fetch_archive(f"{url}/radar.tar.gz", tmp_path / "datasets")
    assert calls.read_text().startswith("-dc ")
    assert (folder / "20240601" / "120500.nc").read_bytes() == b"b" * 100
