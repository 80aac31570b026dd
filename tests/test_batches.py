"""Training windows and the epoch sampler that resume and DDP rely on."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from stages.lib.data.shards import ShardWriter
from stages.lib.errors import UserError
from stages.lib.training.batches import EpochSampler, TokenWindows, evenly_spaced


def three_shards():
    # Distinct value ranges, so a window's values tell which shard it came from.
    return [np.arange(0, 23, dtype=np.uint16), np.arange(100, 110, dtype=np.uint16),
            np.arange(200, 203, dtype=np.uint16), np.arange(300, 313, dtype=np.uint16)]


def test_windows_are_consecutive_tokens_of_one_shard():
    shards = three_shards()
    data = TokenWindows(shards, block_size=4, name="train")
    # (len - 1) // 4 windows per shard: 5, 2, 0, 3
    assert data.n_windows == 10
    assert data.n_tokens == sum(len(s) for s in shards)
    starts = []
    for i in range(data.n_windows):
        w = data.window(i)
        assert len(w) == 5
        assert (np.diff(w.astype(np.int64)) == 1).all()  # consecutive, so never across a shard boundary
        shard = next(s for s in shards if s[0] <= w[0] <= s[-1])
        assert w[-1] <= shard[-1]
        offset = int(w[0] - shard[0])
        assert offset % 4 == 0  # windows start at multiples of block_size
        starts.append(int(w[0]))
    assert starts == [0, 4, 8, 12, 16, 100, 104, 300, 304, 308]


def test_batch_shapes_and_shift():
    data = TokenWindows(three_shards(), block_size=4, name="train")
    indices = [3, 0, 9, 5]
    x, y = data.batch(indices)
    assert x.shape == y.shape == (4, 4)
    assert x.dtype == y.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])  # targets are the inputs shifted by one
    for row, i in enumerate(indices):
        w = torch.from_numpy(data.window(i).astype(np.int64))
        assert torch.equal(x[row], w[:-1]) and torch.equal(y[row], w[1:])


def test_from_split_reads_shards(tmp_path):
    writer = ShardWriter(tmp_path, "val", vocab_size=1000, shard_tokens=20)
    writer.write_documents(np.arange(1, 61), np.array([20, 20, 20]))
    writer.close()
    data = TokenWindows.from_split(tmp_path, "val", block_size=8)
    assert len(data.shards) == 3 and data.n_windows == 3 * ((20 - 1) // 8)
    np.testing.assert_array_equal(data.window(2), np.arange(21, 30))  # first window of the second shard
    with pytest.raises(UserError, match="no train shards"):
        TokenWindows.from_split(tmp_path, "train", block_size=8)


def test_split_too_small_for_block_size():
    with pytest.raises(UserError, match=r"model\.block_size"):
        TokenWindows([np.arange(8, dtype=np.uint16)], block_size=8, name="the val split")
    TokenWindows([np.arange(9, dtype=np.uint16)], block_size=8, name="the val split")  # block_size + 1 is enough


def test_too_small_message_gives_the_largest_shard():
    with pytest.raises(UserError) as info:
        TokenWindows([np.arange(4, dtype=np.uint16)] * 3, block_size=4, name="the val split")
    assert "has 4 tokens per shard at most" in str(info.value)


# --------------------------------------------------------------------------- sampler

def epoch_indices(sampler: EpochSampler, epoch: int, batch_size: int) -> list[int]:
    steps_per_epoch = sampler.n_windows // batch_size
    out = []
    for step in range(epoch * steps_per_epoch, (epoch + 1) * steps_per_epoch):
        out += sampler.indices(step, 0, batch_size, 1)
    return out


def test_every_window_once_per_epoch():
    sampler = EpochSampler(n_windows=24, seed=3)
    first = epoch_indices(sampler, 0, batch_size=4)
    second = epoch_indices(sampler, 1, batch_size=4)
    assert sorted(first) == list(range(24))
    assert sorted(second) == list(range(24))
    assert first != second  # a fresh permutation each epoch
    assert first != list(range(24))  # shuffled


def test_epoch_with_grad_accum():
    sampler = EpochSampler(n_windows=12, seed=0)
    seen = [i for step in range(2) for micro in range(3) for i in sampler.indices(step, micro, 2, 3)]
    assert sorted(seen) == list(range(12))


def test_seeds_differ():
    a = epoch_indices(EpochSampler(50, seed=1), 0, 5)
    b = epoch_indices(EpochSampler(50, seed=2), 0, 5)
    assert sorted(a) == sorted(b) and a != b


def test_indices_are_a_pure_function_of_step_and_micro_step():
    used = EpochSampler(n_windows=7, seed=11)
    calls = [(5, 1), (0, 0), (13, 2), (5, 1), (2, 0)]
    first = [used.indices(step, micro, 3, 4) for step, micro in calls]
    # The same again, out of order, and from fresh samplers (a resumed run)
    again = [used.indices(step, micro, 3, 4) for step, micro in reversed(calls)][::-1]
    fresh = [EpochSampler(n_windows=7, seed=11).indices(step, micro, 3, 4) for step, micro in calls]
    assert first == again == fresh
    assert first[0] == first[3]


def test_two_ranks_get_disjoint_indices():
    n = 40
    ranks = [EpochSampler(n, seed=5, rank=r, world_size=2) for r in range(2)]
    batch_size, accum = 5, 2
    for step in range(2):  # 2 ranks * 5 * 2 = 20 samples per step: two steps are one epoch
        per_rank = [[i for m in range(accum) for i in s.indices(step, m, batch_size, accum)] for s in ranks]
        assert not set(per_rank[0]) & set(per_rank[1])
        assert len(set(per_rank[0])) == len(set(per_rank[1])) == batch_size * accum
    epoch = [i for s in ranks for step in range(2) for m in range(accum) for i in s.indices(step, m, batch_size, accum)]
    assert sorted(epoch) == list(range(n))
    # Together the ranks consume the single-process order of the same seed.
    single = EpochSampler(n, seed=5)
    assert sorted(ranks[0].indices(0, 0, 5, 2) + ranks[1].indices(0, 0, 5, 2)) == sorted(single.indices(0, 0, 10, 2))


@pytest.mark.parametrize("n, count", [(100, 10), (7, 7), (5, 20), (1, 3), (1000, 2)])
def test_evenly_spaced(n, count):
    idx = evenly_spaced(n, count)
    assert len(idx) == min(n, count)
    assert idx[0] == 0 and idx[-1] == n - 1
    assert all(0 <= i < n for i in idx)
    assert len(set(idx)) == len(idx) and idx == sorted(idx)
    gaps = np.diff(idx)
    if len(gaps):
        assert gaps.max() - gaps.min() <= 1  # evenly spread
