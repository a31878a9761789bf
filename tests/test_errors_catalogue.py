"""The input-error catalogue (docs/errors.md): one test per case, each with its exact outcome.

Every error is a :class:`kgrec.errors.KgrecError` subclass naming the file (and line) or the
argument; problems kgrec can work around are counted in ``kg.warnings`` / ``kg.stats()``.
"""

import bz2
import gzip
import http.server
import math
import socket
import threading
import time
import urllib.request
import warnings
from functools import partial
from pathlib import Path

import pytest
import torch

import kgrec
from kgrec.data import rdfparse
from kgrec.data.safety import network_guard
from kgrec.data.validation import DROPPED_USERS_WARNING
from kgrec.errors import (
    CheckpointError,
    EmptyGraphError,
    InputLimitError,
    KgrecError,
    MappingError,
    NetworkAccessError,
    RDFFormatError,
    RDFParseError,
    SplitError,
    TextModelError,
    UnknownIRIError,
)
from tests.conftest import REPO, two_cluster_kg

TOY = REPO / "kg_data" / "toy" / "toy.ttl"
HEAD = ("@prefix kgr: <https://w3id.org/kgrec/vocab#> .\n@prefix ex: <http://ex.org/> .\n"
        "@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n@prefix owl: <http://www.w3.org/2002/07/owl#> .\n")
RDF_XML_HEAD = ('<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
                'xmlns:kgr="https://w3id.org/kgrec/vocab#">\n')


def write(path: Path, content) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def ttl(tmp_path: Path, body: str, name: str = "data.ttl") -> Path:
    return write(tmp_path / name, HEAD + body)


def quiet_load(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return kgrec.load(*args, **kwargs)


def expect(exc, pattern, *args, **kwargs):
    with pytest.raises(exc, match=pattern) as e:
        quiet_load(*args, **kwargs)
    assert isinstance(e.value, KgrecError)
    return e.value


# --------------------------------------------------------------------- malformed syntax
def test_malformed_turtle(tmp_path):
    f = ttl(tmp_path, "ex:u kgr:interactedWith ex:i .\nex:u kgr:interactedWith .\n")
    e = expect(RDFParseError, r"data\.ttl:6: ", f)
    assert (e.path, e.line) == (str(f), 6)


def test_malformed_ntriples(tmp_path):
    f = write(tmp_path / "a.nt", "<http://a> <http://b> <http://c> .\n<http://a> <http://b> .\n")
    e = expect(RDFParseError, r"a\.nt:2: .*object of a triple", f)
    assert e.line == 2


def test_malformed_nquads(tmp_path):
    f = write(tmp_path / "a.nq", "<http://a> <http://b> <http://c> <http://g> .\n<http://a> <http://b> <http://c> <g\n")
    assert expect(RDFParseError, r"a\.nq:2: ", f).line == 2


def test_malformed_rdf_xml(tmp_path):
    f = write(tmp_path / "a.rdf", RDF_XML_HEAD + '<rdf:Description rdf:about="http://a">\n</rdf:RDF>\n')
    e = expect(RDFParseError, r"a\.rdf:4: ill-formed document: expected `</rdf:Description>`", f)
    assert e.line == 4  # pyoxigraph gives no line for RDF/XML; expat locates it


def test_malformed_json_ld(tmp_path):
    f = write(tmp_path / "a.jsonld", '{\n "@id": "http://a",\n "http://b": [\n}\n')
    assert expect(RDFParseError, r"a\.jsonld:4: ", f).line == 4


def test_non_utf8_bytes(tmp_path):
    f = write(tmp_path / "latin1.ttl", (HEAD + 'ex:u kgr:interactedWith ex:i .\nex:i kgr:title "caf\xe9" .\n')
              .encode("latin-1"))
    assert expect(RDFParseError, r"latin1\.ttl:6: .*Invalid UTF-8", f).line == 6


def test_corrupt_gzip(tmp_path):
    f = write(tmp_path / "a.ttl.gz", gzip.compress((HEAD + "ex:u kgr:interactedWith ex:i .\n").encode())[:-12])
    expect(RDFParseError, r"a\.ttl\.gz: cannot read the file as turtle", f)


# ------------------------------------------------------------------------- bad format
def test_unknown_suffix(tmp_path):
    f = write(tmp_path / "a.csv", "user,item\n")
    expect(RDFFormatError, r"cannot guess the RDF format of '.*a\.csv' from its suffix '\.csv'; accepted suffixes: "
                           r"\.ttl \.nt", f)


def test_unknown_format_argument(tmp_path):
    expect(RDFFormatError, r"'format' must be one of json-ld .* \(got 'csv'\)", TOY, format="csv")


def test_compressed_file_with_unknown_inner_suffix(tmp_path):
    f = write(tmp_path / "dump.gz", gzip.compress(b"<http://a> <http://b> <http://c> .\n"))
    expect(RDFFormatError, r"dump\.gz' from its suffix '\(none\)'.*optionally followed by \.gz or \.bz2", f)
    f2 = write(tmp_path / "dump.data.bz2", bz2.compress(b"x"))
    expect(RDFFormatError, r"dump\.data\.bz2' from its suffix '\.data'", f2)
    kg = quiet_load(write(tmp_path / "x.gz", gzip.compress(TOY.read_bytes())), format="turtle")
    assert kg.num_items == 8  # naming the format explicitly fixes it


def test_missing_file_and_empty_folder(tmp_path):
    expect(KgrecError, r"RDF file '.*nothere\.ttl' does not exist", tmp_path / "nothere.ttl")
    (tmp_path / "empty").mkdir()
    expect(KgrecError, r"directory '.*empty' holds no RDF file", tmp_path / "empty")


# ----------------------------------------------------------------------- graph content
def test_empty_graph(tmp_path):
    f = ttl(tmp_path, "# only prefixes\n")
    expect(EmptyGraphError, r"no triples in '.*data\.ttl': the file is empty or holds only prefixes/comments", f)


def test_mapping_matching_nothing(tmp_path):
    f = ttl(tmp_path, 'ex:m1 a ex:Movie ; ex:title "A" .\nex:p1 a ex:Person ; ex:watched ex:m1 .\n')
    e = expect(MappingError, r"mapping 'kgrec' .* finds no users and no items in '.*data\.ttl' \(4 triples\)", f)
    assert "rdf:type classes in the data: <http://ex.org/Movie> (1), <http://ex.org/Person> (1)" in str(e)


def test_literal_where_an_iri_is_expected(tmp_path):
    kg = quiet_load(ttl(tmp_path, 'ex:u kgr:interactedWith ex:i , "ex:j" .\n'
                                  'ex:e kgr:user ex:u ; kgr:item "ex:k" .\n'))
    assert kg.items.labels == ["http://ex.org/i"] and len(kg.interactions) == 1
    assert kg.warnings["interaction 'interactedWith': literal where an IRI is expected (skipped)"] == 1
    assert kg.warnings["interaction 'event': object is a literal, not an IRI (skipped)"] == 1


def test_unparseable_timestamps(tmp_path):
    kg = quiet_load(ttl(tmp_path, 'ex:e1 kgr:user ex:u ; kgr:item ex:i ; kgr:timestamp "next tuesday"^^xsd:dateTime .\n'
                                  'ex:e2 kgr:user ex:u ; kgr:item ex:j ; kgr:timestamp "2020-13-45" .\n'
                                  'ex:e3 kgr:user ex:u ; kgr:item ex:k ; kgr:timestamp 1577836800 .\n'))
    t = kg.interactions.time.tolist()
    assert math.isnan(t[0]) and math.isnan(t[1]) and t[2] == 1577836800.0
    assert kg.warnings["interaction 'event': unparseable timestamp"] == 2


def test_users_without_interactions(tmp_path):
    kg = quiet_load(ttl(tmp_path, "ex:u kgr:interactedWith ex:i .\nex:lurker a kgr:User .\n"))
    # a user is an agent of at least one interaction: the lurker is dropped and counted
    assert kg.users.labels == ["http://ex.org/u"]
    assert kg.stats()["users_without_interactions"] == 0
    assert kg.warnings[DROPPED_USERS_WARNING] == 1 and kg.mapping_report.typed_users_dropped == 1


def test_items_without_text(tmp_path):
    kg = quiet_load(ttl(tmp_path, 'ex:u kgr:interactedWith ex:i , ex:j .\nex:i kgr:title "Has a title" .\n'))
    assert kg.stats()["items_with_text"] == 1
    assert kg.literals.get(1, {}) == {} and kg.label(1) == "j"  # the IRI's local name stands in for a title


def test_duplicate_triples(tmp_path):
    line = "<http://ex.org/u> <https://w3id.org/kgrec/vocab#interactedWith> <http://ex.org/i> .\n"
    edge = "<http://ex.org/i> <http://ex.org/g> <http://ex.org/x> .\n"
    kg = quiet_load(write(tmp_path / "dup.nt", line * 3 + edge * 2))
    assert kg.warnings["duplicate triple"] == 3 and len(kg.interactions) == 1 and kg.triples.shape == (1, 3)


def test_self_loop_triples(tmp_path):
    kg = quiet_load(ttl(tmp_path, "ex:u kgr:interactedWith ex:i .\nex:i ex:similar ex:i ; ex:genre ex:g .\n"
                                  "ex:g ex:broader ex:g .\n", name="loops.ttl"))
    assert kg.warnings["KG self-loop (subject = object) skipped"] == 2
    assert kg.relations.labels == ["http://ex.org/genre"] and kg.triples.tolist() == [[0, 0, 1]]


def test_hub_node_with_a_huge_degree(tmp_path):
    n = 20_000
    lines = [f"<http://ex.org/i{i}> <https://w3id.org/kgrec/vocab#genre> <http://ex.org/hub> ." for i in range(n)]
    lines += [f"<http://ex.org/u{u}> <https://w3id.org/kgrec/vocab#interactedWith> <http://ex.org/i{u}> ."
              for u in range(50)]
    t0 = time.perf_counter()
    kg = quiet_load(write(tmp_path / "hub.nt", "\n".join(lines) + "\n"),
                    mapping={"items": {"classes": [], "infer": True}, "kg": {"edges": "*"}})
    assert time.perf_counter() - t0 < 30
    assert kg.num_items == 50 and kg.triples.shape == (50, 3)  # items are the interacted ones; hub = 1 entity
    kg_all = quiet_load(tmp_path / "hub.nt", mapping={"items": {"classes": [], "infer": True},
                                                      "kg": {"edges": "*", "incoming": True}})
    hub = kg_all.entities.id("http://ex.org/hub")
    assert (kg_all.triples[:, 2] == hub).sum().item() == n  # incoming edges reach all 20,000 items' siblings
    from kgrec.nn.kg_encoder import KGEncoder

    ei, et = kg_all.edge_index()
    torch.manual_seed(0)
    x = torch.randn(kg_all.num_entities, 8)
    out = KGEncoder(2 * kg_all.num_relations, 8, num_layers=2, conv="rgcn", act="identity")(x, ei, et)
    norms = out.norm(dim=1)
    assert torch.isfinite(out).all() and norms[hub] <= 10 * norms.median()  # degree-normalised, no blow-up


# -------------------------------------------------------------------------- API usage
@pytest.fixture(scope="module")
def fitted():
    kg = two_cluster_kg()
    return kg, kgrec.Recommender("ease", reg=1.0).fit(kg)


def test_unknown_user_at_recommend(fitted):
    _, rec = fitted
    with pytest.raises(UnknownIRIError, match=r"unknown user 'http://nobody' \(12 users known\)"):
        rec.recommend(["http://x/user/00", "http://nobody"])


def test_unknown_candidate_item_at_recommend(fitted):
    kg, rec = fitted
    with pytest.raises(UnknownIRIError, match=r"unknown item 'http://x/item/99' \(8 items known\)"):
        rec.recommend(kg.users[0], candidates=["http://x/item/00", "http://x/item/99"])


def test_k_larger_than_the_catalogue(fitted):
    kg, rec = fitted
    top = rec.recommend(kg.users[0], k=1000)[kg.users[0]]
    seen = 3  # every user has 3 of the 8 items in training
    assert len(top) == kg.num_items - seen and len({i for i, _ in top}) == len(top)
    assert len(rec.recommend(kg.users[0], k=1000, exclude_seen=False)[kg.users[0]]) == kg.num_items


@pytest.mark.parametrize("k", [0, -3, 2.5, True, "10"])
def test_bad_k(fitted, k):
    kg, rec = fitted
    with pytest.raises(KgrecError, match=r"'k' must be a positive integer \(got "):
        rec.recommend(kg.users[0], k=k)


def test_checkpoint_from_another_graph(tmp_path, fitted):
    kg, rec = fitted
    rec.save(tmp_path / "m")
    loaded = kgrec.Recommender.load(tmp_path / "m")
    other = two_cluster_kg(n_per=3)
    with pytest.raises(SplitError, match=r"the split has 6 users / 8 items but the model's graph has 12 / 8"):
        loaded.evaluate(kgrec.split(other, "random"))
    params = {"epochs": 2, "dim": 4, "batch_size": 8, "seed": 0, "device": "cpu"}
    kgrec.Recommender("bprmf", **params).fit(kg, kgrec.split(kg, "random", ratios=(0.6, 0.2, 0.2)),
                                              checkpoint_dir=tmp_path / "c")
    with pytest.raises(CheckpointError, match=r"cannot resume from '.*c': it was trained on other users "
                                              r"\(12 users, this graph has 6\)"):
        kgrec.Recommender("bprmf", **params).fit(other, kgrec.split(other, "random", ratios=(0.6, 0.2, 0.2)),
                                                  checkpoint_dir=tmp_path / "c", resume=True)


def test_damaged_checkpoint(tmp_path, fitted):
    _, rec = fitted
    rec.save(tmp_path / "m")
    w = tmp_path / "m" / "model.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"model\.safetensors' has 100 bytes but manifest\.json records"):
        kgrec.Recommender.load(tmp_path / "m")


def test_cli_reports_bad_input_without_traceback(tmp_path, capsys):
    from kgrec.cli import main

    f = ttl(tmp_path, "ex:u kgr:interactedWith .\n")
    assert main(["train", str(f), "--model", "mostpop", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert f"kgrec: error: {f}:5: " in err and "Traceback" not in err


# --------------------------------------------------------------------------- safety
def _billion_laughs(levels: int = 10) -> str:
    ents = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, levels)]
    return ('<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [\n ' + "\n ".join(ents) + "\n]>\n" + RDF_XML_HEAD[22:]
            + f'<rdf:Description rdf:about="http://ex.org/u"><kgr:title>&lol{levels - 1};</kgr:title>'
            "</rdf:Description>\n</rdf:RDF>\n")


def test_billion_laughs_is_refused_fast(tmp_path):
    from kgrec.data.loader import load

    f = write(tmp_path / "lol.rdf", _billion_laughs())
    t0 = time.perf_counter()
    with pytest.raises(RDFParseError, match=r"lol\.rdf:2: the RDF/XML document has a <!DOCTYPE> declaration; "
                                            r"kgrec refuses DTDs and entity declarations"):
        load(f)
    assert time.perf_counter() - t0 < 1.0  # before this check, pyoxigraph expanded it for ~40 s


def test_doctype_with_harmless_entities_is_refused_too(tmp_path):
    f = write(tmp_path / "owl.rdf", '<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [ <!ENTITY ex "http://ex.org/"> ]>\n'
              + RDF_XML_HEAD[22:] + '<rdf:Description rdf:about="&ex;u"><kgr:interactedWith rdf:resource="&ex;i"/>'
              "</rdf:Description>\n</rdf:RDF>\n")
    expect(RDFParseError, r"owl\.rdf:2: .*replace each &entity; by its text and remove the DOCTYPE", f)


def test_remote_json_ld_context_is_never_fetched(tmp_path):
    f = write(tmp_path / "a.jsonld", '{"@context": "http://example.org/ctx.jsonld", "@id": "http://e/x", "name": "y"}')
    expect(RDFParseError, r"a\.jsonld: the JSON-LD document refers to a remote @context.*never fetches", f)


def test_owl_imports_are_not_followed(tmp_path):
    kg = quiet_load(ttl(tmp_path, "<http://ex.org/onto> owl:imports <http://example.org/other.ttl> .\n"
                                  "ex:u kgr:interactedWith ex:i .\n"))
    assert kg.warnings["owl:imports not followed (kgrec reads only the files it is given)"] == 1
    assert kg.num_items == 1


def test_url_input_is_refused_without_allow_network():
    expect(KgrecError, r"'http://example\.org/x\.ttl' is a URL: kgrec reads local files and never fetches anything "
                       r"over the network unless asked to: .*allow_network=True", "http://example.org/x.ttl")
    expect(KgrecError, r"'allow_network' must be True or False \(got 'yes'\)", TOY, allow_network="yes")


def test_url_input_is_downloaded_with_allow_network(tmp_path):
    write(tmp_path / "toy.ttl", TOY.read_text(encoding="utf-8"))
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/toy.ttl"
        kg = quiet_load(url, allow_network=True)
        assert kg.num_items == 8 and kg.num_users == 6
        with pytest.raises(InputLimitError, match=r"http://127\.0\.0\.1:\d+/toy\.ttl: the file holds more than "
                                                  r"max_file_bytes=100 bytes"):
            quiet_load(url, allow_network=True, max_file_bytes=100)
    finally:
        server.shutdown()
        server.server_close()


def test_network_access_during_parsing_fails_loudly(tmp_path, monkeypatch):
    # pyoxigraph never fetches anything; should a reader ever try (here: opening the file looks
    # a name up first), the guard around parsing stops it
    real_open = rdfparse.open_binary

    def open_and_look_up(*a, **k):
        socket.getaddrinfo("203.0.113.7", 80)
        return real_open(*a, **k)

    monkeypatch.setattr(rdfparse, "open_binary", open_and_look_up)
    f = write(tmp_path / "a.jsonld", '{"@context": {"n": "http://e/n"}, "@id": "http://e/x", "n": "y"}')
    from kgrec.data.loader import load

    with pytest.raises(NetworkAccessError, match=r"network access attempted while parsing '.*a\.jsonld' "
                                                 r"\((socket|urllib)\.[a-zA-Z.]+ .*203\.0\.113\.7"):
        load(f)
    # any socket use is refused inside the guard ...
    with pytest.raises(NetworkAccessError, match=r"while testing \(socket\.getaddrinfo '127\.0\.0\.1'"):
        with network_guard("testing"):
            socket.create_connection(("127.0.0.1", 9), timeout=1)
    with pytest.raises(NetworkAccessError, match=r"while testing \(urllib\.Request 'http://127\.0\.0\.1:9/'"):
        with network_guard("testing"):
            urllib.request.urlopen("http://127.0.0.1:9/", timeout=1)
    assert socket.getaddrinfo("127.0.0.1", 80)  # ... and allowed again outside it


def test_network_attempt_swallowed_by_a_library_still_raises():
    with pytest.raises(NetworkAccessError, match=r"socket\.getaddrinfo 'example\.org'"):
        with network_guard("parsing 'x.ttl'"):
            try:
                socket.getaddrinfo("example.org", 80)
            except Exception:
                pass  # a library hiding the error


def test_file_size_limit(tmp_path):
    expect(InputLimitError, r"toy\.ttl: the file has \d+ bytes, more than max_file_bytes=1000; raise the limit",
           TOY, max_file_bytes=1000)
    expect(KgrecError, r"'max_file_bytes' must be a positive integer \(got 0\)", TOY, max_file_bytes=0)


def test_decompressed_size_limit_stops_a_gzip_bomb(tmp_path):
    bomb = write(tmp_path / "bomb.nt.gz", gzip.compress(b"#" * 50_000_000 + b"\n"))
    assert bomb.stat().st_size < 100_000
    t0 = time.perf_counter()
    expect(InputLimitError, r"bomb\.nt\.gz: the file holds more than max_file_bytes=1000000 bytes once decompressed",
           bomb, max_file_bytes=1_000_000)
    assert time.perf_counter() - t0 < 2.0


def test_literal_length_limit(tmp_path):
    from kgrec.data.loader import load

    f = ttl(tmp_path, 'ex:u kgr:interactedWith ex:i .\nex:i kgr:title "%s" .\n' % ("x" * 5000))
    with pytest.raises(InputLimitError, match=r"data\.ttl: a literal of 5000 characters \(subject <http://ex\.org/i>, "
                                              r"predicate <https://w3id\.org/kgrec/vocab#title>\) is longer than "
                                              r"max_literal_chars=100"):
        load(f, max_literal_chars=100)
    assert quiet_load(f, max_literal_chars=5000).num_items == 1


def _tiny_model_dir(path: Path) -> Path:
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path.mkdir()
    (path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]) + "\n")
    BertTokenizerFast.from_pretrained(str(path)).save_pretrained(str(path))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=7, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)
    BertModel(cfg).save_pretrained(str(path))
    return path


def test_pickle_only_text_model_is_refused_unless_allowed(tmp_path):
    from safetensors.torch import load_file

    from kgrec.nn.text_encoder import load_text_model

    d = _tiny_model_dir(tmp_path / "m")
    state = load_file(str(d / "model.safetensors"))
    torch.save(state, d / "pytorch_model.bin")
    (d / "model.safetensors").unlink()
    with pytest.raises(TextModelError, match=r"holds only pickle weights \(pytorch_model\.bin\), which can run code "
                                             r"when loaded; .* or pass allow_pickle=True"):
        load_text_model(d)
    with pytest.raises(TextModelError, match="holds only pickle weights"):
        kgrec.Recommender("hybrid", text_model=str(d), cache_dir="", epochs=1).fit(two_cluster_kg())
    model, _ = load_text_model(d, allow_pickle=True)
    key = "embeddings.word_embeddings.weight"
    assert torch.equal(model.state_dict()[key], state[key])


def test_model_code_in_a_text_model_directory_is_never_run(tmp_path):
    import json

    from kgrec.nn.text_encoder import load_text_model

    d = _tiny_model_dir(tmp_path / "m")
    cfg = json.loads((d / "config.json").read_text())
    cfg["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}
    (d / "config.json").write_text(json.dumps(cfg))
    marker = tmp_path / "PWNED"
    (d / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                               "from transformers import BertConfig as EvilConfig, BertModel as EvilModel\n")
    model, _ = load_text_model(d)
    assert type(model).__name__ == "BertModel" and not marker.exists()
    source = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "kgrec").rglob("*.py"))
    assert "trust_remote_code=True" not in source and source.count("trust_remote_code=False") >= 2
