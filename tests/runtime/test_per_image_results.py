"""per_image.csv from test_step's outputs: one row per image in loader order, by image name in a
loader; results gathered from every rank, each once; only global rank 0 writes the file."""

from __future__ import annotations

import pytest
import torch

from ipe_lightning import results
from ipe_lightning.runtime import per_image
from ipe_lightning.runtime.per_image import PerImageResults, gather_results_across_ranks


def batch_outputs(loader: str, names: list[str], psnr: list[float]) -> dict:
    scores = {key: torch.tensor(psnr) for key in results.PER_IMAGE_FIELDS[3:]}
    return {"loader": loader, "name": names if len(names) > 1 else names[0], "scores": scores}


def run_test(callback: PerImageResults) -> None:
    callback.on_test_epoch_start(None, None)
    callback.on_test_batch_end(None, None, batch_outputs("b/x3", ["z"], [5.0]), {}, 0, 1)
    callback.on_test_batch_end(None, None, batch_outputs("a/x2", ["y", "x"], [2.0, 1.0]), {}, 0, 0)
    callback.on_test_epoch_end(None, None)


def test_rows_are_in_loader_order_then_by_image_name(tmp_path):
    run_test(PerImageResults(tmp_path))
    rows = results.read_per_image(tmp_path)
    assert [(r["set"], r["scale"], r["image"], r["psnr"]) for r in rows] == [
        ("a", "2", "x", 1.0),
        ("a", "2", "y", 2.0),
        ("b", "3", "z", 5.0),
    ]


def test_only_global_rank_zero_writes_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(per_image, "is_rank_zero", lambda: False)
    run_test(PerImageResults(tmp_path))
    assert not (tmp_path / results.PER_IMAGE_FILE).exists()


def test_a_second_test_starts_afresh(tmp_path):
    callback = PerImageResults(tmp_path)
    run_test(callback)
    run_test(callback)
    assert len(results.read_per_image(tmp_path)) == 3


def _gather_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size
    )
    try:
        mine = [{"image": f"{rank}-{i}"} for i in range(rank + 1)]  # uneven shards
        torch.save(gather_results_across_ranks(mine), f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # a few seconds of subprocesses; runs in make test-slow and CI
def test_per_image_rows_are_gathered_from_every_rank_each_once(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_gather_worker, args=(2, port, str(tmp_path)), nprocs=2)
    expected = [{"image": "0-0"}, {"image": "1-0"}, {"image": "1-1"}]
    for rank in range(2):
        assert torch.load(tmp_path / f"rank{rank}.pt") == expected
