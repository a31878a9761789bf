import os
from pathlib import Path

import pytest
import torch

from kgrec.data.graph import Interactions, KnowledgeGraph
from kgrec.data.vocab import Vocab

DATA_ROOT = Path(os.environ.get("KGREC_DATA_ROOT", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long test (real weights or datasets)")
    config.addinivalue_line("markers", "gpu: needs CUDA")


@pytest.fixture(params=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def device(request):
    return torch.device(request.param)


def two_cluster_kg(n_per=6, items_per=4, seed=0) -> KnowledgeGraph:
    """Two taste clusters: users 0..n_per-1 interact with genre-A items, the others with genre-B items.

    Items are entities 0..2*items_per-1; entity ``genre/A`` and ``genre/B`` are attributes linked by
    ``kgr:genre``. Every user skips exactly one item of their cluster (their own index mod items_per),
    so the right answer for each user is that withheld item. Times increase with the item index.
    """
    g = torch.Generator().manual_seed(seed)
    users = Vocab([f"http://x/user/{u:02d}" for u in range(2 * n_per)], name="user")
    items = Vocab([f"http://x/item/{i:02d}" for i in range(2 * items_per)], name="item")
    ents = Vocab(items.labels + ["http://x/genre/A", "http://x/genre/B"], sort=False, name="entity")
    rels = Vocab(["https://w3id.org/kgrec/vocab#genre"], name="relation")
    triples = [[i, 0, 2 * items_per + (i >= items_per)] for i in range(2 * items_per)]
    uu, ii, tt = [], [], []
    for u in range(2 * n_per):
        base = 0 if u < n_per else items_per
        for j in range(items_per):
            if j == u % items_per:
                continue
            uu.append(u)
            ii.append(base + j)
            tt.append(1_000_000 + 86400 * (j + 10 * u))
    inter = Interactions.from_lists(uu, ii, None, tt)
    lits = {i: {"https://w3id.org/kgrec/vocab#title": [f"Item {i} ({'action' if i < items_per else 'romance'})"]}
            for i in range(2 * items_per)}
    del g
    return KnowledgeGraph(users, items, ents, rels, torch.tensor(triples), inter, literals=lits)


@pytest.fixture
def cluster_kg():
    return two_cluster_kg()


TINY_WORDS = ["item", "action", "romance", "genre", "a", "b", "today", "rated", "days", "earlier", "the", "of"]


@pytest.fixture(scope="session")
def tiny_text_model(tmp_path_factory):
    """A local model directory holding a tiny random BERT + tokenizer (no hub access)."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    d = tmp_path_factory.mktemp("tiny-bert")
    words = [f"{i}" for i in range(10)] + [".", ",", "(", ")", ":"] + TINY_WORDS
    (d / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words) + "\n")
    BertTokenizerFast.from_pretrained(str(d)).save_pretrained(str(d))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(words) + 5, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=37, max_position_embeddings=128)
    BertModel(cfg).save_pretrained(str(d))
    return str(d)


def topk_in_fresh_process(model_dir, users, k: int) -> dict:
    """Reload a saved model in a new Python process and return its top-k item IRIs per user."""
    import json
    import subprocess
    import sys

    code = ("import json, sys, kgrec; r = kgrec.Recommender.load(sys.argv[1]); k = int(sys.argv[2]); "
            "print(json.dumps({u: [i for i, _ in v] for u, v in r.recommend(sys.argv[3:], k=k).items()}))")
    out = subprocess.run([sys.executable, "-c", code, str(model_dir), str(k), *users], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


def synthetic_kg(folder, users: int, items: int, seed: int) -> KnowledgeGraph:
    """A small graph from :mod:`kgrec.data.synthetic`, loaded through ``kgrec.load``."""
    import warnings

    import kgrec
    from kgrec.data.synthetic import generate

    path = Path(folder) / "g.nt"
    generate(path, users=users, items=items, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return kgrec.load(path)
