"""The download command against a loopback HTTP server serving small archives with the real
names: the sets land in the layout the suite reads, a cut download resumes, and a corrupt archive,
an unreachable host or a full disk is one line and exit status 2. No test touches the network."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import zipfile
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ipe_lightning.data import download, download_http
from ipe_lightning.data.eval_sets import EvalSetSpec, build_eval_datasets
from ipe_lightning.data.images import decode_rgb
from ipe_lightning.data.sources import DIV2K, Benchmark

HR_SIDE = 24  # LR 12, 8, 6 at x2, x3, x4


def png_bytes(rng: np.random.Generator, side: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as bundle:
        for name, data in files.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def tar_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as bundle:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def published_archives() -> dict[str, bytes]:
    """The nine archives under their published names, holding what the real ones hold (folders
    and file names), with tiny images."""
    rng = np.random.default_rng(0)
    archives = {}
    for split, names in {"train": ["0001", "0002"], "valid": ["0801"]}.items():
        archives[f"DIV2K_{split}_HR.zip"] = zip_of(
            {f"DIV2K_{split}_HR/{n}.png": png_bytes(rng, HR_SIDE) for n in names}
        )
        for s in (2, 3, 4):
            folder = f"DIV2K_{split}_LR_bicubic/X{s}"
            archives[f"DIV2K_{split}_LR_bicubic_X{s}.zip"] = zip_of(
                {f"{folder}/{n}x{s}.png": png_bytes(rng, HR_SIDE // s) for n in names}
            )
    bench = {}
    for subdir, name in {
        "Set5": "baby",
        "Set14": "lenna",
        "B100": "3096",
        "Urban100": "img_001",
    }.items():
        bench[f"benchmark/{subdir}/HR/{name}.png"] = png_bytes(rng, HR_SIDE)
        for s in (2, 3, 4):
            bench[f"benchmark/{subdir}/LR_bicubic/X{s}/{name}x{s}.png"] = png_bytes(
                rng, HR_SIDE // s
            )
    archives["benchmark.tar"] = tar_of(bench)
    return archives


@dataclass
class Server:
    """What the loopback server serves, and the ``(file, Range header)`` of every GET."""

    files: dict[str, bytes]
    cut_after: dict[str, int] = field(default_factory=dict)  # bytes sent before hanging up, once
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    url: str = ""


class RangeHandler(BaseHTTPRequestHandler):
    """Serves ``Server.files`` by name with HTTP Range support (206, 416)."""

    def do_GET(self) -> None:
        served: Server = self.server.served  # type: ignore[attr-defined]
        name = self.path.rsplit("/", 1)[-1]
        wanted = self.headers.get("Range")
        served.requests.append((name, wanted))
        body = served.files.get(name)
        if body is None:
            self.send_error(404)
            return
        start = int(re.fullmatch(r"bytes=(\d+)-", wanted).group(1)) if wanted else 0
        if start >= len(body) and wanted:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(body)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if wanted else 200)
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        cut = served.cut_after.pop(name, None)
        self.wfile.write(body[start:] if cut is None else body[start : start + cut])
        if cut is not None:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)  # hang up mid-body
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server():
    served = Server(published_archives())
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    httpd.served = served  # type: ignore[attr-defined]
    served.url = f"http://127.0.0.1:{httpd.server_address[1]}/files/"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield served
    httpd.shutdown()
    httpd.server_close()


def run(root: Path, served: Server, *datasets: str, extra: tuple[str, ...] = ()) -> int:
    urls = ("--div2k-url", served.url, "--benchmark-url", served.url)
    return download.main(
        [*(datasets or ("div2k", "benchmarks")), "--root", str(root), *urls, *extra]
    )


def one_line_error(capsys) -> str:
    """The error: the last line on stderr (after the progress lines), with no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("download: error: ") and err.count("download: error: ") == 1
    return last


def leftovers(root: Path) -> list[str]:
    """Staging folders and partial files anywhere under ``root``."""
    return [p.name for p in root.rglob("*") if ".extracting" in p.name or p.suffix == ".part"]


def test_both_datasets_land_in_the_layout_the_suite_reads(tmp_path, server, capsys):
    root = tmp_path / "data"
    assert run(root, server) == 0
    assert "done: run with data.root=" in capsys.readouterr().out
    assert [p.name for p in DIV2K(root).train_images()] == ["0001.png", "0002.png"]
    for scale in (2, 3, 4):
        assert DIV2K(root).lr_file(DIV2K(root).val_images()[0], scale).is_file()
    spec = EvalSetSpec.from_config("set5", {"images": Benchmark(root, "Set5"), "scales": [2, 3, 4]})
    datasets = build_eval_datasets(spec, decode_rgb)  # checks every pair's size
    assert [dataset.paired_scale for _, dataset in datasets] == [2, 3, 4]
    manifest = json.loads((root / "downloads" / "benchmark.tar.json").read_text())
    body = server.files["benchmark.tar"]
    assert manifest["sha256"] == hashlib.sha256(body).hexdigest()
    assert manifest["size"] == len(body) and manifest["url"] == server.url + "benchmark.tar"
    assert manifest["extracted_to"] == str(root / "benchmark")
    assert "Content-Length" in manifest["checked"]
    assert not (root / "downloads" / "benchmark.tar").exists()  # removed once extracted
    assert leftovers(root) == []


def test_a_rerun_skips_every_folder_already_in_place(tmp_path, server, capsys):
    assert run(tmp_path, server) == 0
    served_before = len(server.requests)
    assert run(tmp_path, server) == 0
    assert len(server.requests) == served_before
    assert "DIV2K_train_HR is there, skipped" in capsys.readouterr().out


def test_a_root_in_the_liif_layout_is_filled_in_that_layout(tmp_path, server):
    (tmp_path / "load" / "div2k").mkdir(parents=True)
    (tmp_path / "load" / "benchmark").mkdir(parents=True)
    (tmp_path / "load" / "benchmark" / "Set5").mkdir()  # the folder is there: skipped
    assert run(tmp_path, server) == 0
    assert (tmp_path / "load" / "div2k" / "DIV2K_valid_LR_bicubic" / "X3" / "0801x3.png").is_file()
    assert not (tmp_path / "DIV2K").exists()
    assert ("benchmark.tar", None) not in server.requests


def test_a_download_cut_halfway_resumes_where_it_stopped(tmp_path, server, capsys):
    body = server.files["DIV2K_valid_HR.zip"]
    half = len(body) // 2
    server.cut_after["DIV2K_valid_HR.zip"] = half
    assert run(tmp_path, server, "div2k") == 2
    message = one_line_error(capsys)
    assert "DIV2K_valid_HR.zip stopped at" in message and "run the same command again" in message
    part = tmp_path / "downloads" / "DIV2K_valid_HR.zip.part"
    assert part.stat().st_size == half
    assert not (tmp_path / "DIV2K" / "DIV2K_valid_HR").exists()

    served_before = len(server.requests)
    assert run(tmp_path, server, "div2k") == 0
    assert server.requests[served_before] == ("DIV2K_valid_HR.zip", f"bytes={half}-")  # the rest
    manifest = json.loads((tmp_path / "downloads" / "DIV2K_valid_HR.zip.json").read_text())
    assert manifest["sha256"] == hashlib.sha256(body).hexdigest()
    assert (tmp_path / "DIV2K" / "DIV2K_valid_HR" / "0801.png").is_file()


def corrupt_member(archive: bytes) -> bytes:
    """The zip with one byte of its first member's data changed (its CRC no longer matches)."""
    data = bytearray(archive)
    data[zipfile.sizeFileHeader + len("DIV2K_train_HR/0001.png") + 40] ^= 0xFF
    return bytes(data)


@pytest.mark.parametrize(
    "damage", [corrupt_member, lambda body: body[: len(body) // 2]], ids=["bad CRC", "cut short"]
)
def test_a_corrupt_archive_is_removed_and_leaves_no_set_behind(tmp_path, server, capsys, damage):
    server.files["DIV2K_train_HR.zip"] = damage(server.files["DIV2K_train_HR.zip"])
    assert run(tmp_path, server, "div2k") == 2
    message = one_line_error(capsys)
    assert "DIV2K_train_HR.zip is corrupt" in message and "download it anew" in message
    assert not (tmp_path / "DIV2K" / "DIV2K_train_HR").exists()
    assert not (tmp_path / "downloads" / "DIV2K_train_HR.zip").exists()
    assert leftovers(tmp_path) == []


def test_an_archive_without_its_folder_is_refused(tmp_path, server, capsys):
    server.files["benchmark.tar"] = tar_of({"Set5/HR/baby.png": b"not in benchmark/"})
    assert run(tmp_path, server, "benchmarks") == 2
    assert "does not hold the folder benchmark/" in one_line_error(capsys)
    assert not (tmp_path / "benchmark").exists()


def test_an_unreachable_host_is_one_line_naming_the_url_option(tmp_path, capsys):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = f"http://127.0.0.1:{port}/"
    assert download.main(["div2k", "--root", str(tmp_path), "--div2k-url", dead]) == 2
    message = one_line_error(capsys)
    assert f"cannot reach 127.0.0.1:{port}" in message and "--div2k-url" in message


def test_a_missing_file_on_the_server_is_an_http_error(tmp_path, server, capsys):
    del server.files["benchmark.tar"]
    assert run(tmp_path, server, "benchmarks") == 2
    assert "benchmark.tar answered HTTP 404" in one_line_error(capsys)


def test_a_full_disk_while_writing_keeps_the_partial_file_to_resume(
    tmp_path, server, capsys, monkeypatch
):
    def no_space(handle, chunk):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(download_http, "write_chunk", no_space)
    assert run(tmp_path, server, "div2k") == 2
    message = one_line_error(capsys)
    assert "no space left on the device while writing" in message and "resumes" in message
    assert (tmp_path / "downloads" / "DIV2K_train_HR.zip.part").exists()
    assert not (tmp_path / "DIV2K" / "DIV2K_train_HR").exists()


def test_too_little_free_space_is_told_before_the_download(tmp_path, server, capsys, monkeypatch):
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=100))
    assert run(tmp_path, server, "benchmarks") == 2
    message = one_line_error(capsys)
    assert "not enough free space" in message and "100 B are free" in message
    assert not (tmp_path / "downloads" / "benchmark.tar.part").exists()


def test_a_full_disk_while_extracting_leaves_no_set_and_keeps_the_archive(
    tmp_path, server, capsys, monkeypatch
):
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", no_space)  # how zipfile writes each member
    assert run(tmp_path, server, "div2k") == 2
    assert "no space left on the device while extracting DIV2K_train_HR.zip" in one_line_error(
        capsys
    )
    assert not (tmp_path / "DIV2K" / "DIV2K_train_HR").exists()
    assert (tmp_path / "downloads" / "DIV2K_train_HR.zip").is_file()  # a rerun needs no download
    assert leftovers(tmp_path) == []


def official(monkeypatch, served: Server, sha256: str | None) -> None:
    """Make the loopback server the official DIV2K site, publishing ``DIV2K_train_HR.zip`` with
    its true size and ``sha256``."""
    body = served.files["DIV2K_train_HR.zip"]
    archives = tuple(
        replace(a, size=len(body), sha256=sha256) if a.name == "DIV2K_train_HR.zip" else a
        for a in download.ARCHIVES
        if a.dataset == "div2k"
    )
    monkeypatch.setattr(download, "ARCHIVES", archives[:1])
    monkeypatch.setitem(download.OFFICIAL_URLS, "div2k", served.url)


def test_the_published_sha256_is_checked_on_files_from_the_official_site(
    tmp_path, server, capsys, monkeypatch
):
    official(monkeypatch, server, hashlib.sha256(b"another file").hexdigest())
    assert download.main(["div2k", "--root", str(tmp_path)]) == 2
    assert "its SHA-256" in one_line_error(capsys)
    assert not (tmp_path / "downloads" / "DIV2K_train_HR.zip").exists()

    official(monkeypatch, server, hashlib.sha256(server.files["DIV2K_train_HR.zip"]).hexdigest())
    assert download.main(["div2k", "--root", str(tmp_path)]) == 0
    manifest = json.loads((tmp_path / "downloads" / "DIV2K_train_HR.zip.json").read_text())
    assert manifest["checked"].startswith("size and SHA-256 against the published file")


def test_base_urls_come_from_the_option_then_the_environment_then_the_official_site():
    env = {"IPE_DIV2K_URL": "http://mirror/div2k"}
    urls = download.base_urls({"div2k": None, "benchmarks": "http://other/b/"}, env)
    assert urls == {"div2k": "http://mirror/div2k/", "benchmarks": "http://other/b/"}
    assert download.base_urls({}, {})["div2k"] == "https://data.vision.ee.ethz.ch/cvl/DIV2K/"


def test_the_catalogue_holds_the_published_archives():
    names = [archive.name for archive in download.ARCHIVES]
    assert names == [
        *(
            f"DIV2K_{s}_{k}.zip"
            for s in ("train", "valid")
            for k in ("HR", *(f"LR_bicubic_X{x}" for x in (2, 3, 4)))
        ),
        "benchmark.tar",
    ]
    plan = download.plan(["benchmarks"], Path("/data"), download.base_urls({}, {}))
    assert [step.url for step in plan] == ["https://cv.snu.ac.kr/research/EDSR/benchmark.tar"]


def test_a_dry_run_prints_the_plan_and_fetches_nothing(tmp_path, server, capsys):
    assert run(tmp_path, server, extra=("--dry-run",)) == 0
    lines = capsys.readouterr().out.splitlines()
    (x3,) = [line for line in lines if "DIV2K_train_LR_bicubic_X3.zip" in line]
    assert x3.startswith(f"  {server.url}DIV2K_train_LR_bicubic_X3.zip (427.8 MB) -> ")
    assert x3.endswith(str(tmp_path / "DIV2K" / "DIV2K_train_LR_bicubic" / "X3"))
    assert server.requests == [] and not (tmp_path / "downloads").exists()


def test_progress_in_a_log_is_a_plain_line_every_tenth():
    log = io.StringIO()  # not a terminal
    progress = download_http.Progress("x.zip", 1000, stream=log)
    for done in range(50, 1001, 50):
        progress.update(done)
    progress.finish(1000)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert [line.split()[1] for line in lines[:-1]] == [f"{p}%" for p in range(10, 101, 10)]
    assert lines[-1].startswith("x.zip: 1.0 kB in ")


def test_progress_on_a_terminal_redraws_one_line(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    clock = iter(range(0, 1000))
    monkeypatch.setattr(download_http.time, "monotonic", lambda: float(next(clock)))
    screen = Terminal()
    progress = download_http.Progress("x.zip", 1000, start=500, stream=screen)
    progress.update(750)
    text = screen.getvalue()
    assert text.startswith("x.zip: resuming at 500 B\n")
    assert "\rx.zip [" + "#" * 22 + " " * 8 + "]  75% of 1.0 kB" in text


@pytest.mark.slow
def test_the_module_runs_as_a_command_and_tells_a_failure_without_a_traceback(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ipe_lightning.data.download",
            "benchmarks",
            "--root",
            str(tmp_path),
            "--benchmark-url",
            dead,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "cannot reach 127.0.0.1" in result.stderr
