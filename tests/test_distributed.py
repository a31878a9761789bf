"""kgrec.training.distributed: torchrun detection, DistributedSampler sharding, DDP training on 2 CPU processes.

The 2-process checks run in one ``torch.multiprocessing.spawn`` of two gloo ranks (one start-up for
all of them): a DDP step on per-rank batches of ``b`` equals a one-process step on the concatenated
``2b`` batch; DDP fits leave identical weights on both ranks; LightGCN's test quality matches a
one-process fit at the same global batch.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DistributedSampler

import kgrec
from kgrec.cli import main
from kgrec.errors import DistributedError
from kgrec.training import distributed
from tests.conftest import REPO, two_cluster_kg

TOY = REPO / "kg_data" / "toy" / "toy.ttl"
QUALITY_TOL = 0.05  # |test NDCG@10 (2 ranks) - test NDCG@10 (1 process)|: the ranks' negatives differ


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun_env(monkeypatch, rank=0, world=1, port=None):
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", str(world))
    monkeypatch.setenv("LOCAL_RANK", str(rank))
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port or _free_port()))


def _data():
    kg = two_cluster_kg(n_per=16, items_per=8)
    return kg, kgrec.split(kg, "random", seed=0)


def _lightgcn(batch_size: int) -> kgrec.Recommender:
    return kgrec.Recommender("lightgcn", dim=16, num_layers=2, epochs=12, lr=0.02, batch_size=batch_size,
                             eval_every=3, patience=100, seed=0, device="cpu")


# ------------------------------------------------------------------------------ one process
def test_not_launched_changes_nothing(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert not distributed.launched()
    assert distributed.init() is None and distributed.context() is None
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    assert distributed.all_reduce_sum(2.5) == 2.5
    assert distributed.broadcast_object({"a": 1}) == {"a": 1}
    kg, sp = _data()
    info = _lightgcn(8).fit(kg, sp).fit_info
    assert (info["world_size"], info["backend"]) == (1, None)


@pytest.mark.parametrize("n,world", [(10, 2), (11, 2), (7, 3), (2, 4), (1, 2)])
def test_shard_is_distributed_sampler(n, world):
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(n))
    parts = [distributed.shard(perm, r, world) for r in range(world)]
    for r, part in enumerate(parts):
        ref = list(DistributedSampler(range(n), num_replicas=world, rank=r, shuffle=False))
        assert part.tolist() == perm[ref].tolist()
    assert len({p.numel() for p in parts}) == 1  # every rank runs the same number of steps
    # step k of all ranks at batch b == one process's step k at batch world * b (no padding case)
    if n % world == 0:
        b = n // world // 2 or 1
        glob = torch.cat([p[:b] for p in parts])
        assert sorted(glob.tolist()) == sorted(perm[: world * b].tolist())


@pytest.mark.parametrize("backend,device,match", [
    ("mpi", "auto", "'backend' must be one of"),
    ("gloo", "cuda", "'device' 'cuda' with backend 'gloo'"),
    ("nccl", "cpu", "'nccl' needs CUDA tensors but 'device' is 'cpu'"),
    ("auto", "tpu", "'device' must be"),
])
def test_bad_setup_errors(monkeypatch, backend, device, match):
    _torchrun_env(monkeypatch)
    with pytest.raises(DistributedError, match=match):
        distributed.init(backend, device)
    assert distributed.context() is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_nccl_without_cuda(monkeypatch):
    _torchrun_env(monkeypatch)
    with pytest.raises(DistributedError, match="'nccl' needs CUDA but torch.cuda.is_available"):
        distributed.init("nccl")


@pytest.mark.parametrize("env,match", [
    ({"RANK": "x"}, "RANK must be an integer"),
    ({"RANK": "2"}, r"RANK must be in \[0, WORLD_SIZE=2\)"),
    ({"WORLD_SIZE": "0"}, "WORLD_SIZE must be >= 1"),
])
def test_bad_torchrun_env(monkeypatch, env, match):
    _torchrun_env(monkeypatch, rank=0, world=2)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(DistributedError, match=match):
        distributed.init("gloo", "cpu")


def test_missing_master_addr(monkeypatch):
    _torchrun_env(monkeypatch)
    monkeypatch.delenv("MASTER_ADDR")
    with pytest.raises(DistributedError, match="MASTER_ADDR is not set"):
        distributed.init("gloo", "cpu")


def test_world_of_one_is_exactly_one_process(monkeypatch):
    """DDP over one gloo rank: same permutation, sampler and steps, so bit-identical weights."""
    kg, sp = _data()
    plain = _lightgcn(8).fit(kg, sp)
    _torchrun_env(monkeypatch)
    with distributed.session("gloo", "cpu") as ctx:
        assert (ctx.rank, ctx.world, ctx.backend) == (0, 1, "gloo")
        ddp = _lightgcn(8).fit(kg, sp)
    assert distributed.context() is None  # torn down
    assert (ddp.fit_info["world_size"], ddp.fit_info["backend"]) == (1, "gloo")
    a, b = plain.estimator.module.state_dict(), ddp.estimator.module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert ddp.fit_info["best_epoch"] == plain.fit_info["best_epoch"]


def test_closed_form_rank1_exits_cleanly(monkeypatch, tmp_path):
    _torchrun_env(monkeypatch, rank=1, world=2)
    out = tmp_path / "m"
    assert main(["train", str(TOY), "--model", "ease", "--out", str(out)]) == 0
    assert not out.exists()  # rank 0 alone fits and writes a closed-form model


# ------------------------------------------------------------------------------ two processes
def _grads(module) -> dict:
    """Parameter name -> gradient (zeros for a parameter the step did not use)."""
    return {k: v.grad.clone() if v.grad is not None else torch.zeros_like(v) for k, v in module.named_parameters()}


def _step_grads(est, u, p, neg) -> dict:
    est.module.zero_grad(set_to_none=True)
    est.batch_loss(u, p, neg).backward()
    return _grads(est.module)


def _built(model: str, kg, sp, **params):
    est = kgrec.Recommender(model, seed=0, device="cpu", **params).estimator
    est.prepare(kg, sp)
    torch.manual_seed(0)
    est.build()
    return est


def _worker(rank: int, world: int, port: int, out_dir: str, text_model: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    res: dict = {}
    kg, sp = _data()
    with distributed.session("gloo", "cpu") as ctx:
        # one DDP step on this rank's half of a fixed batch of 2b pairs vs one process on all 2b
        g = torch.Generator().manual_seed(5)
        idx = torch.randperm(len(sp.train), generator=g)[:12]
        u, p = sp.train.user[idx], sp.train.item[idx]
        neg = torch.randint(0, kg.num_items, (12,), generator=g)
        half = distributed.shard(torch.arange(12), ctx.rank, ctx.world)
        for model in ("bprmf", "lightgcn", "cke"):
            params = {"dim": 8}
            if model == "cke":
                params["kg_weight"] = 0.0  # CKE's KG triples are random per rank; the BPR part is checked
            ref = _step_grads(_built(model, kg, sp, **params), u, p, neg)
            est = _built(model, kg, sp, **params)
            ddp = distributed.wrap(est, ctx, u[:4], p[:4])
            est.module.zero_grad(set_to_none=True)
            ddp(u[half], p[half], neg[half]).backward()
            res[f"step.{model}"] = {k: (g, ref[k]) for k, g in _grads(est.module).items()}
        # whole fits: weights identical across ranks; quality vs one process (compared by the test)
        rec = _lightgcn(8).fit(kg, sp)
        res["lightgcn"] = {"state": rec.estimator.module.state_dict(), "info": rec.fit_info,
                           "test": rec.evaluate(sp, ks=(10,), part="test")}
        for name, params in (("cke", {"dim": 8, "epochs": 2, "batch_size": 16}),
                             ("hybrid", {"dim": 8, "num_heads": 2, "epochs": 2, "batch_size": 16,
                                         "text_model": text_model, "cache_dir": "", "text_max_length": 32})):
            r = kgrec.Recommender(name, seed=0, device="cpu", **params).fit(kg, sp)
            res[name] = {"state": r.estimator.module.state_dict(), "info": r.fit_info}
    torch.save(res, Path(out_dir) / f"rank{rank}.pt")


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory, tiny_text_model):
    out = tmp_path_factory.mktemp("ddp")
    kg, sp = _data()
    _built("lightgcn", kg, sp, dim=8)  # warm imports up once: the forked ranks inherit them
    start = "spawn" if torch.cuda.is_initialized() else "fork"  # CUDA state does not survive a fork
    torch.multiprocessing.start_processes(_worker, args=(2, _free_port(), str(out), tiny_text_model), nprocs=2,
                                          join=True, start_method=start)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]


@pytest.mark.parametrize("model", ["bprmf", "lightgcn", "cke"])
def test_ddp_step_equals_concatenated_batch(two_ranks, model):
    """Known right answer: the mean of two per-rank mean-loss gradients = the gradient on all 2b pairs."""
    for rank in two_ranks:
        for name, (ddp_grad, ref_grad) in rank[f"step.{model}"].items():
            assert ddp_grad.shape == ref_grad.shape
            torch.testing.assert_close(ddp_grad, ref_grad, rtol=1e-5, atol=1e-7, msg=name)


@pytest.mark.parametrize("model", ["lightgcn", "cke", "hybrid"])
def test_ddp_ranks_end_identical(two_ranks, model):
    r0, r1 = (r[model] for r in two_ranks)
    assert r0["state"].keys() == r1["state"].keys()
    assert all(torch.equal(r0["state"][k], r1["state"][k]) for k in r0["state"])
    for info in (r0["info"], r1["info"]):
        assert (info["world_size"], info["backend"]) == (2, "gloo")
    # rank 0 validated and broadcast: both ranks kept the same epoch and saw the same curve
    assert r0["info"]["best_epoch"] == r1["info"]["best_epoch"]
    assert [c.get("valid") for c in r0["info"]["curve"]] == [c.get("valid") for c in r1["info"]["curve"]]


def test_ddp_quality_matches_one_process(two_ranks):
    """2 ranks x batch 8 vs 1 process x batch 16: same steps per epoch, same test quality (tolerance)."""
    kg, sp = _data()
    one = _lightgcn(16).fit(kg, sp)
    test1 = one.evaluate(sp, ks=(10,), part="test")["ndcg@10"]
    test2 = two_ranks[0]["lightgcn"]["test"]["ndcg@10"]
    assert abs(test2 - test1) <= QUALITY_TOL, (test1, test2)
    # and both learned the clusters: far above a random ranking of 16 items (NDCG@10 ~ 0.3 here)
    assert min(test1, test2) > 0.6
    assert two_ranks[0]["lightgcn"]["info"]["epochs_run"] == one.fit_info["epochs_run"] == 12


@pytest.mark.slow
def test_torchrun_cli(tmp_path):
    """``torchrun --nproc_per_node=2 -m kgrec train``: rank 0 writes the model and its metrics."""
    out = tmp_path / "m"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "kgrec", "train", str(TOY), "--model", "lightgcn", "--param", "epochs=3",
                          "--param", "batch_size=4", "--out", str(out)], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    fit = json.loads((out / "metrics.json").read_text())["fit"]
    assert (fit["world_size"], fit["backend"]) == (2, "gloo")
    assert res.stderr.count("fitting lightgcn") == 1  # only rank 0 logs
    assert kgrec.Recommender.load(out).recommend(kgrec.load(TOY).users.labels[:1], k=2)
