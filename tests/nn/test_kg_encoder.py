import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from kgrec.nn.kg_encoder import KGEncoder

N, R, D = 8, 6, 4
ISOLATED = 7

# name -> KGEncoder kwargs; every behaviour test runs on each.
CONVS = {
    "rgcn": dict(conv="rgcn"),
    "rgcn_bases": dict(conv="rgcn", num_bases=2),
    "compgcn_mult": dict(conv="compgcn", comp="mult"),
    "compgcn_sub": dict(conv="compgcn", comp="sub"),
    "compgcn_bases": dict(conv="compgcn", comp="mult", num_bases=2),
    "kgat": dict(conv="kgat"),
}


def _graph():
    """20 random edges among nodes 0..6 (a duplicate included), node 7 isolated."""
    g = torch.Generator().manual_seed(0)
    ei = torch.randint(0, N - 1, (2, 19), generator=g)
    ei = torch.cat([ei, ei[:, :1]], dim=1)
    et = torch.randint(0, R, (20,), generator=g)
    x = torch.randn(N, D, generator=g)
    return x, ei, et


def _model(kw, num_layers=2, randomise=True, **extra):
    torch.manual_seed(0)
    m = KGEncoder(R, D, num_layers=num_layers, **kw, **extra)
    if randomise:  # non-zero biases etc. make the exact-value tests sharper
        with torch.no_grad():
            for p in m.parameters():
                p.normal_(0.0, 0.5)
    return m.eval()


@pytest.fixture(params=list(CONVS), ids=list(CONVS))
def kw(request):
    return CONVS[request.param]


def test_output_size_and_dtype(kw):
    x, ei, et = _graph()
    out = _model(kw)(x, ei, et)
    assert out.size() == torch.Size([N, D])
    assert out.dtype == x.dtype


def test_gradient_reaches_x_and_every_parameter(kw):
    x, ei, et = _graph()
    x.requires_grad_(True)
    m = _model(kw, act="tanh")  # tanh: no dead units, every weight gets a non-zero gradient
    m(x, ei, et).square().sum().backward()
    assert x.grad.abs().sum() > 0
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


# ----------------------------------------------------------------- naive references
def _naive_layer(conv, kw, layer, x, z, ei, et):
    """One layer by a per-edge Python loop, straight from each paper's formula."""
    act = {"rgcn": F.relu, "compgcn": torch.tanh, "kgat": F.leaky_relu}[conv]
    src, dst = ei.tolist()
    types = et.tolist()
    out = torch.zeros(N, D)
    if conv == "rgcn":
        w = layer.weight if layer.comp is None else torch.einsum("rb,bij->rij", layer.comp, layer.weight)
        for i in range(N):
            for r in range(R):
                nbr = [s for s, d, t in zip(src, dst, types) if d == i and t == r]
                for s in nbr:
                    out[i] += x[s] @ w[r] / len(nbr)
        return act(out + x @ layer.root + layer.bias), z
    if conv == "compgcn":
        phi = (lambda h, r: h * r) if kw.get("comp", "sub") == "mult" else (lambda h, r: h - r)
        agg = torch.zeros(2, N, D)
        for s, d, t in zip(src, dst, types):
            dr = t % 2
            d_out = sum(1 for s2, t2 in zip(src, types) if s2 == s and t2 % 2 == dr)
            d_in = sum(1 for d2, t2 in zip(dst, types) if d2 == d and t2 % 2 == dr)
            agg[dr, d] += phi(x[s], z[t]) / math.sqrt(d_out * d_in)
        out = (agg[0] @ layer.w_orig + agg[1] @ layer.w_inv + phi(x, layer.loop_rel) @ layer.w_loop) / 3
        z_next = z @ layer.w_rel if layer.w_rel is not None else z
        return act(out + layer.bias), z_next
    p = x @ layer.w_att
    e_n = torch.zeros(N, D)
    for i in range(N):
        edges = [(s, t) for s, d, t in zip(src, dst, types) if d == i]
        if edges:
            logit = torch.stack([p[s] @ torch.tanh(p[i] + z[t]) for s, t in edges])
            alpha = logit.softmax(0)
            e_n[i] = sum(a * x[s] for a, (s, _) in zip(alpha, edges))
    return act(layer.lin_sum(x + e_n)) + act(layer.lin_prod(x * e_n)), z


def test_matches_naive_per_edge_reference(kw):
    x, ei, et = _graph()
    m = _model(kw)
    with torch.no_grad():
        z = m.relation_embeddings()
        h, total = x, x.clone()
        for layer in m.layers:
            h, z = _naive_layer(kw["conv"], kw, layer, h, z, ei, et)
            total += h
        torch.testing.assert_close(m(x, ei, et), total / 3, rtol=1e-4, atol=1e-5)


def test_huge_graph_fallback_path_gives_the_same_output(kw, monkeypatch):
    import kgrec.nn.kg_encoder as mod

    x, ei, et = _graph()
    m = _model(kw)
    with torch.no_grad():
        out = m(x, ei, et)
        monkeypatch.setattr(mod, "_MAX_KEY", 0)  # as if (relation, node, node) keys overflowed
        torch.testing.assert_close(m(x, ei, et), out)


def test_isolated_node_is_a_function_of_its_own_input(kw):
    x, ei, et = _graph()
    m = _model(kw)
    with torch.no_grad():
        out = m(x, ei, et)
        # exact: every layer only applies its self-path to the node's own state
        h, total = x[ISOLATED:], x[ISOLATED:].clone()
        for layer in m.layers:
            if kw["conv"] == "rgcn":
                h = F.relu(h @ layer.root + layer.bias)
            elif kw["conv"] == "compgcn":
                phi = h * layer.loop_rel if kw.get("comp", "sub") == "mult" else h - layer.loop_rel
                h = torch.tanh(phi @ layer.w_loop / 3 + layer.bias)
            else:
                h = F.leaky_relu(layer.lin_sum(h)) + F.leaky_relu(layer.lin_prod(torch.zeros_like(h)))
            total += h
        torch.testing.assert_close(out[ISOLATED:], total / 3)
        # and the same alone in an empty graph, whatever the other nodes hold
        empty = torch.empty(2, 0, dtype=torch.long)
        torch.testing.assert_close(m(x[ISOLATED:], empty, torch.empty(0, dtype=torch.long)), out[ISOLATED:])
        x2 = x.clone()
        x2[:ISOLATED] += 5.0
        assert torch.equal(m(x2, ei, et)[ISOLATED], out[ISOLATED])
        assert not torch.allclose(m(x2, ei, et)[0], out[0])


@pytest.mark.parametrize("num_bases", [None, 2])
def test_rgcn_layer_equals_pyg_rgcnconv(num_bases):
    from torch_geometric.nn import RGCNConv

    x, ei, et = _graph()
    m = _model(dict(conv="rgcn", num_bases=num_bases), num_layers=1, act="identity")
    layer = m.layers[0]
    ref = RGCNConv(D, D, R, num_bases=num_bases, aggr="mean")
    with torch.no_grad():
        ref.weight.copy_(layer.weight)
        if num_bases is not None:
            ref.comp.copy_(layer.comp)
        ref.root.copy_(layer.root)
        ref.bias.copy_(layer.bias)
        torch.testing.assert_close(m(x, ei, et), (x + ref(x, ei, et)) / 2, rtol=1e-5, atol=1e-5)


def test_identity_activation_single_layer_rgcn_exact():
    # one node with two neighbours of relation 0 and one of relation 1: mean per relation
    x = torch.eye(4)
    ei = torch.tensor([[1, 2, 3], [0, 0, 0]])
    et = torch.tensor([0, 0, 1])
    m = KGEncoder(2, 4, num_layers=1, conv="rgcn", act="identity")
    with torch.no_grad():
        m.layers[0].weight.copy_(torch.stack([torch.eye(4), 2 * torch.eye(4)]))
        m.layers[0].root.copy_(torch.eye(4))
        out = m(x, ei, et)
    # h1[0] = x0 + (x1 + x2) / 2 + 2 * x3 ; out = (x + h1) / 2
    torch.testing.assert_close(out[0], torch.tensor([2.0, 0.5, 0.5, 2.0]) / 2)
    torch.testing.assert_close(out[1:], x[1:])  # receive nothing: (x + x) / 2


def test_permutation_equivariance(kw):
    x, ei, et = _graph()
    m = _model(kw)
    g = torch.Generator().manual_seed(1)
    perm = torch.randperm(N, generator=g)        # new node k is old node perm[k]
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(N)
    eperm = torch.randperm(ei.size(1), generator=g)
    with torch.no_grad():
        out = m(x, ei, et)
        out_p = m(x[perm], inv[ei][:, eperm], et[eperm])
    torch.testing.assert_close(out_p, out[perm], rtol=1e-5, atol=1e-5)


def test_relation_types_matter(kw):
    x, ei, et = _graph()
    m = _model(kw)
    with torch.no_grad():
        out = m(x, ei, et)
        swapped = m(x, ei, (et + 2) % R)  # same direction parity, different relation
    assert not torch.allclose(out[:ISOLATED], swapped[:ISOLATED], atol=1e-4)
    assert torch.equal(out[ISOLATED], swapped[ISOLATED])


def test_determinism(kw):
    x, ei, et = _graph()
    a, b = _model(kw, randomise=False), _model(kw, randomise=False)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert torch.equal(a(x, ei, et), b(x, ei, et))
    assert torch.equal(a(x, ei, et), a(x, ei, et))


def test_edge_dropout_only_in_training(kw):
    x, ei, et = _graph()
    m = _model(kw, edge_dropout=0.5)
    ref = _model(kw)  # same parameters, no edge dropout
    assert torch.equal(m(x, ei, et), ref(x, ei, et))
    m.train()
    torch.manual_seed(1)
    a = m(x, ei, et)
    torch.manual_seed(2)
    b = m(x, ei, et)
    assert not torch.allclose(a, b)
    torch.manual_seed(1)
    assert torch.equal(m(x, ei, et), a)


def test_dropout_only_in_training(kw):
    x, ei, et = _graph()
    m = _model(kw, dropout=0.5)
    assert torch.equal(m(x, ei, et), _model(kw)(x, ei, et))
    m.train()
    assert not torch.allclose(m(x, ei, et), m.eval()(x, ei, et))


def test_prepared_graph_gives_the_same_output_and_gradients(kw):
    x, ei, et = _graph()
    m = _model(kw, edge_dropout=0.5)
    graph = m.prepare_graph(ei, et, N)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_a = m(xa, ei, et)
    out_b = m(xb, ei, et, graph=graph)
    torch.testing.assert_close(out_b, out_a)
    grads_a = torch.autograd.grad(out_a.square().sum(), [xa, *m.parameters()])
    grads_b = torch.autograd.grad(out_b.square().sum(), [xb, *m.parameters()])
    for ga, gb in zip(grads_a, grads_b):
        torch.testing.assert_close(gb, ga)
    m.train()  # a prepared graph is fixed: edge dropout does not apply to it
    torch.testing.assert_close(m(x, ei, et, graph=graph), out_a.detach())


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("prepared", [False, True])
def test_targets_give_the_full_outputs_rows_and_gradients(kw, layers, prepared):
    """Restricting the last layer to some nodes (unsorted, the isolated one included) changes no
    value: outputs and every gradient equal those of the full output's rows.
    """
    x, ei, et = _graph()
    m = _model(kw, num_layers=layers)
    targets = torch.tensor([5, 0, ISOLATED, 3])
    graph = m.prepare_graph(ei, et, N, targets=targets) if prepared else None
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    full = m(xa, ei, et)[targets]
    part = m(xb, ei, et, graph=graph, targets=targets)
    assert part.shape == (4, D)
    torch.testing.assert_close(part, full)
    w = torch.randn(4, D, generator=torch.Generator().manual_seed(1))  # a loss that weighs each row
    grads_a = torch.autograd.grad((full * w).sum(), [xa, *m.parameters()])
    grads_b = torch.autograd.grad((part * w).sum(), [xb, *m.parameters()])
    for ga, gb in zip(grads_a, grads_b):
        torch.testing.assert_close(gb, ga)
    # a prepared graph serves other targets too (its cached view is rebuilt for them)
    if prepared:
        other = torch.tensor([1, 2])
        torch.testing.assert_close(m(x, ei, et, graph=graph, targets=other), m(x, ei, et)[other])


def test_targets_of_the_last_layer_skip_the_other_nodes():
    """The last layer's view holds only the messages into the targets."""
    x, ei, et = _graph()
    m = _model(CONVS["compgcn_sub"])
    graph = m.prepare_graph(ei, et, N)
    view = graph.restricted(torch.tensor([0, 3]))
    into = ((ei[1] == 0) | (ei[1] == 3))
    assert view.num_dst == 2 and view.src.numel() == int(into.sum())
    assert set(view.pair_dst.tolist()) <= {0, 1}
    assert int(view.adj._nnz()) < int(graph.adj._nnz())


@pytest.mark.parametrize("targets,match", [
    (torch.tensor([0, 0]), "must not repeat"),
    (torch.tensor([N]), r"node ids in \[0, 8\)"),
    (torch.tensor([[0]]), "shape \\[T\\]"),
    (torch.tensor([0.0]), "long tensor"),
])
def test_bad_targets(targets, match):
    x, ei, et = _graph()
    with pytest.raises(ValueError, match=match):
        _model(CONVS["rgcn"])(x, ei, et, targets=targets)


def test_zero_layers_returns_input():
    x, ei, et = _graph()
    assert torch.equal(KGEncoder(R, D, num_layers=0)(x, ei, et), x)


def test_relation_embeddings():
    assert KGEncoder(R, D, conv="rgcn").relation_embeddings() is None
    assert KGEncoder(R, D).relation_embeddings().size() == torch.Size([R, D])
    assert KGEncoder(R, D, conv="kgat", num_bases=2).relation_embeddings().size() == torch.Size([R, D])


def test_repr():
    assert str(KGEncoder(94, 64)) == (
        "KGEncoder(conv='compgcn', comp='sub', num_relations=94, dim=64, num_layers=2, "
        "num_bases=None, dropout=0.0, edge_dropout=0.0, act='tanh')")
    assert str(KGEncoder(10, 8, num_layers=1, conv="rgcn", num_bases=3, edge_dropout=0.1)) == (
        "KGEncoder(conv='rgcn', num_relations=10, dim=8, num_layers=1, num_bases=3, "
        "dropout=0.0, edge_dropout=0.1, act='relu')")


def test_reset_parameters_restores_initial_distribution():
    m = KGEncoder(R, D, conv="rgcn")
    with torch.no_grad():
        m.layers[0].bias.fill_(3.0)
    m.reset_parameters()
    assert torch.equal(m.layers[0].bias, torch.zeros(D))


@pytest.mark.parametrize("kwargs, match", [
    (dict(conv="gat"), r"'conv' must be one of 'compgcn', 'kgat', 'rgcn' \(got 'gat'\)"),
    (dict(dim=0), r"'dim' must be a positive integer \(got 0\)"),
    (dict(num_relations=0), r"'num_relations' must be a positive integer \(got 0\)"),
    (dict(num_layers=-1), r"'num_layers' must be an integer >= 0 \(got -1\)"),
    (dict(num_bases=0), r"'num_bases' must be a positive integer \(got 0\)"),
    (dict(dropout=1.0), r"'dropout' must be a number in \[0, 1\) \(got 1.0\)"),
    (dict(edge_dropout=-0.1), r"'edge_dropout' must be a number in \[0, 1\)"),
    (dict(comp="div"), r"'comp' must be one of 'mult', 'sub' \(got 'div'\)"),
    (dict(act="gelu"), r"'act' must be None or one of"),
])
def test_bad_constructor_arguments(kwargs, match):
    args = dict(num_relations=R, dim=D)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        KGEncoder(**args)


def test_bad_forward_inputs():
    x, ei, et = _graph()
    m = KGEncoder(R, D)
    with pytest.raises(ValueError, match=r"'x' must be a float tensor of shape \[N, 4\]"):
        m(x[:, :3], ei, et)
    with pytest.raises(ValueError, match=r"'edge_index' must be a long tensor of shape \[2, M\]"):
        m(x, ei[:1], et)
    with pytest.raises(ValueError, match=r"'edge_type' must be a long tensor of shape \[20\]"):
        m(x, ei, et[:5])
    bad_et = et.clone()
    bad_et[3] = R
    with pytest.raises(ValueError, match=r"'edge_type' must hold types in \[0, 6\).*got values in \[\d+, 6\]"):
        m(x, ei, bad_et)
    bad_ei = ei.clone()
    bad_ei[1, 3] = -1
    with pytest.raises(ValueError, match=r"'edge_index' must hold node ids in \[0, 8\).*got values in \[-1, "):
        m(x, bad_ei, et)


# ----------------------------------------------------------------- benchmark script
def _load_benchmark():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "kg_encoder_speed.py"
    spec = importlib.util.spec_from_file_location("kg_encoder_speed", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_synthetic_graph_layout():
    bench = _load_benchmark()
    ei, et = bench.synthetic_ckg(nodes=300, users=20, items=40, relations=10, kg_edges=400,
                                 ui_edges=200, seed=0)
    assert ei.size() == torch.Size([2, 600]) and et.size() == torch.Size([600])
    assert int(et.max()) == 9 and int(et.min()) == 0
    ui = et >= 8
    # user -> item (type 8) goes from the user block [280, 300) to items [0, 40)
    assert ((ei[0, et == 8] >= 280) & (ei[1, et == 8] < 40)).all()
    assert ((ei[0, et == 9] < 40) & (ei[1, et == 9] >= 280)).all()
    assert (ei[:, ~ui] < 280).all()  # KG edges stay among entities
    # inverse edges mirror forward ones
    fwd, inv = ei[:, et % 2 == 0][:, :200], ei[:, (et % 2 == 1) & ~ui]
    assert torch.equal(fwd.flip(0), inv)


def test_benchmark_script_writes_json_and_markdown(tmp_path):
    bench = _load_benchmark()
    report = bench.main(["--nodes", "300", "--users", "20", "--items", "40", "--relations", "10",
                         "--kg-edges", "400", "--ui-edges", "200", "--dim", "8", "--repeats", "1",
                         "--runs", "1", "--in-process", "--out-dir", str(tmp_path),
                         "--convs", "compgcn", "pyg_rgcn"])
    data = json.loads((tmp_path / "kg_encoder_speed.json").read_text())
    assert [r["name"] for r in data["results"]] == ["compgcn", "pyg_rgcn"]
    assert data["graph"]["edges"] == 600 and data["threads"] == [2] and "commit" in data
    md = (tmp_path / "kg_encoder_speed.md").read_text()
    assert md.count("\n| ") == 3 and "## 2 threads" in md  # header + 2 rows
    assert report["results"][0]["fwd_bwd_ms_min"] > 0
