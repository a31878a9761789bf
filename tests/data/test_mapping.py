"""Mappings: defaults, shipped profiles, TOML/YAML files, terms, paths, the positive rule, errors."""

import math
import re
from pathlib import Path

import pytest

from kgrec.data.mapping import (
    DEFAULT_PREFIXES,
    InteractionRule,
    KGRule,
    Mapping,
    PositiveRule,
    TextRule,
    UserRule,
    data_dir,
    profiles,
)
from kgrec.errors import MappingError

KGR = "https://w3id.org/kgrec/vocab#"
SCHEMA = "http://schema.org/"
MAPPINGS = Path(__file__).resolve().parents[2] / "kg_data" / "mappings"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- profiles
def test_default_mapping_is_the_kgrec_profile():
    assert profiles() == ["kgrec", "kgrec-behaviours", "schema-org"]
    assert data_dir() / "mappings" == MAPPINGS
    m = Mapping.profile("kgrec")
    assert m == Mapping()
    assert Mapping.coerce(None) == Mapping()
    c = m.compile()
    assert c.user_classes == {KGR + "User"} and c.item_classes == {KGR + "Item"}
    assert c.same_as == {"http://www.w3.org/2002/07/owl#sameAs"}
    event, direct = c.rules
    assert (event.agent, event.object, event.weight) == (((KGR + "user",),), ((KGR + "item",),), ((KGR + "rating",),))
    assert direct.predicate == KGR + "interactedWith" and not direct.inverse
    assert c.edges is None and c.languages == ("en", "") and c.numeric == (KGR + "year",)
    assert c.text_predicates[:2] == (KGR + "title", KGR + "description") and len(c.text_predicates) == 8


def test_schema_org_profile_reads_nested_rating_path():
    c = Mapping.profile("schema-org").compile()
    review = next(r for r in c.rules if r.name == "review")
    assert review.classes == {SCHEMA + "Review"}
    assert review.weight == ((SCHEMA + "reviewRating", SCHEMA + "ratingValue"),)
    assert review.time == ((SCHEMA + "datePublished",), (SCHEMA + "dateCreated",))
    assert c.user_classes == frozenset()
    assert ("https://schema.org/", "http://schema.org/") in c.rewrite


@pytest.mark.parametrize("name", ["kgrec", "kgrec-behaviours", "schema-org"])
def test_dict_round_trip(name):
    m = Mapping.profile(name)
    assert Mapping.from_dict(m.to_dict()) == m


def test_unknown_profile_lists_available():
    with pytest.raises(MappingError,
                       match=r"'profile' must be one of kgrec, kgrec-behaviours, schema-org \(got 'dbpedia'"):
        Mapping.profile("dbpedia")


def test_data_dir_env_var(tmp_path, monkeypatch):
    (tmp_path / "mappings").mkdir()
    write(tmp_path / "mappings" / "mine.toml", 'name = "mine"\n[text]\nlanguages = ["de"]\n')
    monkeypatch.setenv("KGREC_DATA_DIR", str(tmp_path))
    assert profiles() == ["mine"]
    m = Mapping.profile("mine")
    assert m.name == "mine" and m.text.languages == ["de"]
    assert m.interactions == Mapping().interactions  # missing sections keep the defaults


def test_coerce_accepts_every_form(tmp_path):
    f = write(tmp_path / "m.toml", '[text]\nlanguages = ["fr"]\n')
    assert Mapping.coerce(f).text.languages == ["fr"]
    assert Mapping.coerce(str(f)).text.languages == ["fr"]
    assert Mapping.coerce({"text": {"languages": ["it"]}}).text.languages == ["it"]
    assert Mapping.coerce("schema-org").name == "schema-org"
    m = Mapping()
    assert Mapping.coerce(m) is m
    with pytest.raises(MappingError, match=r"'mapping' must be a profile name .*\(got 'nope'\)"):
        Mapping.coerce("nope")
    with pytest.raises(MappingError, match=r"mapping file '.*missing\.toml' does not exist"):
        Mapping.coerce(tmp_path / "missing.toml")


# --------------------------------------------------------------- files
TOML = """
name = "shop"
[prefixes]
ex = "http://example.org/shop#"
[users]
classes = ["ex:Customer"]
infer = false
[[interactions]]
name = "bought"
class = "ex:Order"
agent = "ex:customer"
object = ["ex:product", "ex:line/ex:product"]
time = "ex:date"
weight = "ex:quantity"
positive = "weight > 0"
[kg]
edges = ["ex:brand", "<http://example.org/other#maker>"]
max_hops = 2
"""

YAML = """
name: shop
prefixes: {ex: "http://example.org/shop#"}
users: {classes: ["ex:Customer"], infer: false}
interactions:
  - name: bought
    class: ex:Order
    agent: ex:customer
    object: [ex:product, ex:line/ex:product]
    time: ex:date
    weight: ex:quantity
    positive: weight > 0
kg:
  edges: [ex:brand, "<http://example.org/other#maker>"]
  max_hops: 2
"""


def test_toml_and_yaml_give_the_same_mapping(tmp_path):
    a = Mapping.from_file(write(tmp_path / "m.toml", TOML))
    b = Mapping.from_file(write(tmp_path / "m.yaml", YAML))
    assert a == b
    c = a.compile()
    ex = "http://example.org/shop#"
    assert c.user_classes == {ex + "Customer"} and not c.infer_users
    (rule,) = c.rules
    assert rule.object == ((ex + "product",), (ex + "line", ex + "product"))
    assert rule.positive == PositiveRule("weight > 0", ">", 0.0)
    assert c.edges == {ex + "brand", "http://example.org/other#maker"} and c.max_hops == 2
    assert a.prefixes["kgr"] == DEFAULT_PREFIXES["kgr"]  # defaults stay next to new prefixes
    assert a.text == TextRule()  # sections not given keep the defaults


def test_readme_examples_parse_and_agree(tmp_path):
    text = (MAPPINGS / "README.md").read_text(encoding="utf-8")
    toml_src = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    yaml_src = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    a = Mapping.from_file(write(tmp_path / "example.toml", toml_src))
    b = Mapping.from_file(write(tmp_path / "example.yaml", yaml_src))
    assert a == b
    assert [r.name for r in a.interactions] == ["purchase", "rating"]
    assert a.compile().rules[1].positive.op == ">="


def test_extends_a_profile_and_a_relative_file(tmp_path):
    m = Mapping.from_dict({"extends": "schema-org", "text": {"languages": ["*"]}})
    assert [r.name for r in m.interactions] == ["review", "review-action", "action"]
    assert m.text.languages == ["*"] and m.text.predicates == Mapping.profile("schema-org").text.predicates
    write(tmp_path / "base.toml", '[kg]\nmax_hops = 1\n')
    child = Mapping.from_file(write(tmp_path / "child.toml", 'extends = "base.toml"\n[kg]\nincoming = true\n'))
    assert child.kg == KGRule(max_hops=1, incoming=True)


# ------------------------------------------------------------ terms, paths
def test_expand_terms():
    m = Mapping(prefixes={"ex": "http://example.org/"})
    assert m.expand("kgr:user") == KGR + "user"
    assert m.expand("ex:a") == "http://example.org/a"
    assert m.expand("<urn:x:y>") == "urn:x:y"
    assert m.expand("http://example.org/p") == "http://example.org/p"
    with pytest.raises(MappingError, match=r"'users.classes' uses unknown prefix 'foo' in 'foo:Bar'"):
        m.expand("foo:Bar", "users.classes")
    with pytest.raises(MappingError, match=r"must be a CURIE like 'kgr:user'.*\(got 'User'\)"):
        m.expand("User")


def test_expand_paths():
    m = Mapping()
    assert m.expand_path("schema:reviewRating/schema:ratingValue") == (SCHEMA + "reviewRating", SCHEMA + "ratingValue")
    assert m.expand_path("<http://a.org/x/y>/<http://a.org/z>") == ("http://a.org/x/y", "http://a.org/z")
    assert m.expand_path("<http://a.org/x/y> / kgr:b") == ("http://a.org/x/y", KGR + "b")
    assert m.expand_path("http://a.org/x/y") == ("http://a.org/x/y",)
    for bad in ("kgr:a/", "kgr:a//kgr:b", "<http://a.org/x", ""):
        with pytest.raises(MappingError, match="'interactions'"):
            m.expand_path(bad, "interactions")


# ---------------------------------------------------------- positive rule
@pytest.mark.parametrize("text,w,keep", [
    ("all", 0.0, True), ("ALL", math.nan, True),
    ("weight >= 4", 4.0, True), ("weight >= 4", 3.5, False),
    ("weight>3.5", 4.0, True), ("weight > 3.5", 3.5, False),
    ("weight <= -1e1", -10.0, True), ("weight < .5", 0.4, True),
    ("weight == 1", 1.0, True), ("weight != 1", 1.0, False),
    ("weight >= 4", math.nan, False), ("weight != 1", math.nan, False),
])
def test_positive_rule(text, w, keep):
    assert PositiveRule.parse(text, "positive")(w) is keep


@pytest.mark.parametrize("bad", [
    "weight >= 4; import os", "rating > 3", "__import__('os').system('true')", "weight => 4",
    "weight >= four", "weight >= 4 and weight < 5", "",
])
def test_positive_rule_rejects_anything_else(bad):
    with pytest.raises(MappingError, match=r"'interactions\[0\].positive' must be 'all' or 'weight OP number'"):
        Mapping.from_dict({"interactions": [{"name": "r", "agent": "kgr:user", "object": "kgr:item",
                                             "weight": "kgr:rating", "positive": bad}]})


# ---------------------------------------------------------------- errors
def test_unknown_keys_name_file_and_key(tmp_path):
    f = write(tmp_path / "m.toml", '[users]\nclases = ["kgr:User"]\n')
    with pytest.raises(MappingError, match=r"m\.toml: 'users\.clases' is not a key of \[users\] "
                                           r"\(expected one of: classes, infer\)"):
        Mapping.from_file(f)
    f = write(tmp_path / "n.toml", 'colour = "red"\n')
    with pytest.raises(MappingError, match=r"n\.toml: 'colour' is not a mapping key"):
        Mapping.from_file(f)
    f = write(tmp_path / "r.yaml", "interactions:\n  - {name: x, predicate: 'kgr:p', wieght: 'kgr:w'}\n")
    with pytest.raises(MappingError, match=r"r\.yaml: 'interactions\[0\]\.wieght' is not a key of \[\[interact"):
        Mapping.from_file(f)


def test_syntax_errors_name_file_and_line(tmp_path):
    f = write(tmp_path / "bad.toml", '[users]\ninfer = tru\nclasses = ["kgr:User"]\n')
    with pytest.raises(MappingError, match=r"bad\.toml:2: invalid TOML: .*line 2"):
        Mapping.from_file(f)
    f = write(tmp_path / "open.toml", '[users]\ninfer = true\nclasses = ["kgr:User"\n')
    with pytest.raises(MappingError, match=r"open\.toml: invalid TOML: Unclosed array"):
        Mapping.from_file(f)
    f = write(tmp_path / "bad.yaml", "users:\n  classes: [kgr:User\n  infer: true\n")
    with pytest.raises(MappingError, match=r"bad\.yaml:\d+: invalid YAML"):
        Mapping.from_file(f)
    f = write(tmp_path / "m.json", "{}")
    with pytest.raises(MappingError, match=r"must end in \.toml, \.yaml or \.yml \(got '\.json'\)"):
        Mapping.from_file(f)


@pytest.mark.parametrize("d,match", [
    ({"users": {"infer": "yes"}}, r"'users\.infer' must be true or false \(got 'yes'\)"),
    ({"users": {"classes": [1]}}, r"'users\.classes' must be a list of strings"),
    ({"kg": {"max_hops": 0}}, r"'kg\.max_hops' must be a positive integer or absent \(got 0\)"),
    ({"kg": {"edges": 3}}, r"'kg\.edges' must be a list of strings"),
    ({"text": {"languages": ["english!"]}}, r"'text\.languages' must hold language tags"),
    ({"prefixes": {"ex": "not an iri"}}, r"'prefixes\.ex' must map a prefix name to an absolute IRI"),
    ({"interactions": []}, r"'interactions' must list at least one interaction rule"),
    ({"interactions": [{"predicate": "kgr:p"}]}, r"'interactions\[0\]\.name' is required"),
    ({"interactions": [{"name": "a", "agent": "kgr:user"}]},
     r"'interactions\[0\]' \('a'\) needs 'predicate' \(direct\) or both 'agent' and 'object'.*missing 'object'"),
    ({"interactions": [{"name": "a", "predicate": "kgr:p", "time": "kgr:t"}]},
     r"'interactions\[0\]' \('a'\) is a direct rule \('predicate'\), so it takes no 'time'"),
    ({"interactions": [{"name": "a", "predicate": "kgr:p"}, {"name": "a", "predicate": "kgr:q"}]},
     r"'interactions\[1\]\.name' must be unique"),
    ({"interactions": [{"name": "a", "agent": "kgr:u", "object": "kgr:i", "inverse": True}]},
     r"'interactions\[0\]\.inverse' \('a'\) only applies to a direct rule"),
    ({"interactions": [{"name": "a", "agent": "kgr:u", "object": "kgr:i", "positive": "weight > 1"}]},
     r"'interactions\[0\]\.positive' \('a'\) compares the weight, but the rule has no 'weight' path"),
    ({"interactions": [{"name": "a", "agent": "foo:u", "object": "kgr:i"}]},
     r"'interactions\[0\]\.agent' uses unknown prefix 'foo'"),
    ({"extends": "nothing-like-this"}, r"'extends' must be a profile name"),
])
def test_bad_values(d, match):
    with pytest.raises(MappingError, match=match):
        Mapping.from_dict(d, source="test.toml")


def test_dataclasses_validate_too():
    with pytest.raises(MappingError, match=r"mapping: 'users\.infer' must be true or false"):
        Mapping(users=UserRule(infer=1))
    m = Mapping(interactions=[InteractionRule("rated", agent="kgr:user", object="kgr:item", weight="kgr:rating",
                                              positive="weight >= 4")])
    assert m.compile().rules[0].positive.threshold == 4.0
