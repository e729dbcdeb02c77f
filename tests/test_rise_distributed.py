"""Two gloo processes share the mask blocks of one clip and reach the single-process map."""

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from asdxai.explain import RISE, RISEExecution, RISEMaskConfig
from asdxai.explain.distributed import DistContext, shard

T, F = 40, 48
CFG = RISEMaskConfig(block_size=100)


def _problem():
    g = torch.Generator().manual_seed(0)
    spec = torch.rand(T, F, generator=g) + 0.5
    w = torch.randn(T, F, generator=g)
    return spec, (lambda x: (x * w).sum((1, 2)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str, estimator: str) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        ctx = DistContext(rank, world, "gloo")
        spec, box = _problem()
        # 5 blocks over 2 ranks, uneven last round; the ranks ask for different batch sizes
        # (they agree on the smaller one for the block assignment)
        res = RISE(box, mask_config=CFG).attribute(
            spec, n_masks=500, seed=4, estimator=estimator,
            execution=RISEExecution(batch_size=300 if rank == 0 else 200, distributed=ctx),
        )  # fmt: skip
        np.save(f"{out}/rank{rank}.npy", res.importance)
        np.save(f"{out}/rank{rank}_n.npy", np.array([res.n_masks, res.next_block]))
        np.save(f"{out}/rank{rank}_agreement.npy", np.array([res.agreement]))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("estimator", ["centered", "cv"])
def test_two_gloo_ranks_equal_single_process(tmp_path, estimator):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), estimator), nprocs=2, join=True)
    spec, box = _problem()
    single = RISE(box, mask_config=CFG).attribute(spec, n_masks=500, seed=4, estimator=estimator)
    for rank in range(2):
        imp = np.load(tmp_path / f"rank{rank}.npy")
        np.testing.assert_allclose(imp, single.importance, rtol=1e-6, atol=1e-6)
        assert list(np.load(tmp_path / f"rank{rank}_n.npy")) == [500, 5]
        agreement = float(np.load(tmp_path / f"rank{rank}_agreement.npy")[0])
        assert agreement == pytest.approx(single.agreement, abs=1e-9)


def test_shard_clips():
    items = list(range(7))
    assert shard(items, None) == items
    parts = [shard(items, DistContext(r, 3, "gloo")) for r in range(3)]
    assert sorted(sum(parts, [])) == items and parts[0] == [0, 3, 6]
