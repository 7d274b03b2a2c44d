"""Reproducible sampling: same seed → same samples; ranks, workers and epochs differ."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from ipe_lightning.data.datamodule import SRDataModule
from ipe_lightning.data.sampler import EpochSampler
from ipe_lightning.data.sources import BundledPhotos


def pairs(size=10, epoch=0, **options):
    sampler = EpochSampler(size, seed=options.pop("seed", 0), **options)
    sampler.set_epoch(epoch)
    return list(sampler)


def test_same_seed_epoch_and_rank_give_the_same_pairs():
    assert pairs(epoch=3, rank=1, world_size=2) == pairs(epoch=3, rank=1, world_size=2)
    assert pairs(seed=1) != pairs(seed=2)


def test_each_epoch_draws_a_new_order_and_new_seeds():
    first, second = pairs(epoch=0), pairs(epoch=1)
    assert sorted(i for i, _ in first) == sorted(i for i, _ in second) == list(range(10))
    assert [i for i, _ in first] != [i for i, _ in second]
    assert not {s for _, s in first} & {s for _, s in second}


def test_ranks_get_disjoint_shares_that_cover_the_epoch():
    shares = [pairs(size=10, epoch=2, rank=r, world_size=3) for r in range(3)]
    assert [len(share) for share in shares] == [4, 4, 4]  # padded to 12, as DistributedSampler
    assert len(EpochSampler(10, seed=0, world_size=3)) == 4
    indices = [i for share in shares for i, _ in share]
    assert set(indices) == set(range(10))
    seeds = [s for share in shares for _, s in share]
    assert len(set(seeds)) == 12  # the two padded repeats still get their own seeds


def test_validation_order_and_seeds_stay_fixed_across_epochs():
    fixed = {"shuffle": False, "reseed_each_epoch": False}
    assert [i for i, _ in pairs(**fixed)] == list(range(10))
    assert pairs(epoch=0, **fixed) == pairs(epoch=5, **fixed)


def test_skip_resumes_mid_epoch_exactly_once():
    sampler = EpochSampler(10, seed=4)
    sampler.set_epoch(7)
    full = list(sampler)
    sampler.skip = 6
    assert list(sampler) == full[6:]
    assert list(sampler) == full  # used once
    assert len(sampler) == 10  # Lightning's restored batch counter expects the full epoch


def test_bad_arguments_are_errors():
    with pytest.raises(ValueError, match="rank"):
        EpochSampler(10, seed=0, rank=2, world_size=2)
    with pytest.raises(ValueError, match="seed"):
        EpochSampler(10, seed=-1)


@pytest.fixture(scope="module")
def bundled_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cache"))


def first_batches(cache_dir, count=2, rank=0, world_size=1, epoch=0, **options):
    options = {"batch_size": 4, "sample_q": 16, "repeat": 2, "num_workers": 0} | options
    module = SRDataModule(BundledPhotos(), cache_dir=cache_dir, seed=5, **options)
    module.trainer = SimpleNamespace(global_rank=rank, world_size=world_size, current_epoch=0)
    loader = module.train_dataloader()
    loader.sampler.set_epoch(epoch)
    batches = []
    for batch in loader:
        batches.append(batch)
        if len(batches) == count:
            break
    return batches


def assert_same(first, second):
    for a, b in zip(first, second, strict=True):
        for key in ("lr", "coord", "cell", "gt"):
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_samples_do_not_depend_on_the_number_of_workers(bundled_cache):
    serial = first_batches(bundled_cache, num_workers=0)
    parallel = first_batches(bundled_cache, num_workers=2, persistent_workers=False)
    assert_same(serial, parallel)


def test_ranks_and_epochs_get_different_samples(bundled_cache):
    rank0 = first_batches(bundled_cache, rank=0, world_size=2)
    rank1 = first_batches(bundled_cache, rank=1, world_size=2)
    epoch1 = first_batches(bundled_cache, epoch=1)
    again = first_batches(bundled_cache, rank=0, world_size=2)
    assert_same(rank0, again)
    assert not torch.equal(rank0[0]["gt"], rank1[0]["gt"])
    assert not torch.equal(first_batches(bundled_cache)[0]["gt"], epoch1[0]["gt"])
