"""Dataset converters: exact triples on tiny synthetic folders, escaping, real-data counts."""

from __future__ import annotations

import gzip
import os
from collections import Counter
from pathlib import Path

import pyoxigraph as ox
import pytest

from kgrec.data.convert import (
    CONVERTERS,
    SourceFormatError,
    convert,
    convert_book_crossing,
    convert_lastfm,
    convert_movielens_100k,
    convert_movielens_latest_small,
    iri,
    literal,
    tag_slug,
)
from kgrec.data.validation import REPEATS_WARNING
from kgrec.errors import KgrecError

KGR = "https://w3id.org/kgrec/vocab#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
SAME = "http://www.w3.org/2002/07/owl#sameAs"
XSD = "http://www.w3.org/2001/XMLSchema#"
FB = "http://rdf.freebase.com/ns/"
DBO = "http://dbpedia.org/ontology/"
DBR = "http://dbpedia.org/resource/"
DATA_ROOT = Path(os.environ.get("KGREC_DATA_ROOT", Path(__file__).resolve().parents[3] / "shared" / "data"))


def read_triples(path: Path) -> set[tuple]:
    """The file's triples as plain tuples: IRIs as str, literals as ``(value, lang or datatype)``."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    out = []
    for q in ox.parse(data, format=ox.RdfFormat.N_TRIPLES):
        o = q.object
        if isinstance(o, ox.Literal):
            o = (o.value, o.language or o.datatype.value)
        else:
            o = o.value
        out.append((q.subject.value, q.predicate.value, o))
    assert len(out) == len(set(out)), "converter wrote a duplicate triple"
    return set(out)


def write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> None:
    p = folder / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(text.encode(encoding))


def event(base: str, n: int, user: str, item: str, rating=None, time=None) -> set[tuple]:
    e = f"{base}event/{n}"
    s = {(e, RDF_TYPE, KGR + "Interaction"), (e, KGR + "user", base + "user/" + user),
         (e, KGR + "item", base + "item/" + item)}
    if rating is not None:
        s.add((e, KGR + "rating", rating))
    if time is not None:
        s.add((e, KGR + "timestamp", (time, XSD + "dateTime")))
    return s


# --------------------------------------------------------------------------------- N-Triples terms
def test_literal_escapes_quote_backslash_newline_cr_and_controls():
    assert literal('a"b\\c\nd\re\tf\x01') == '"a\\"b\\\\c\\nd\\re\\tf\\u0001"'
    assert literal("Amélie") == '"Amélie"'
    assert literal("x", lang="en") == '"x"@en'
    assert literal("3", datatype=XSD + "integer") == f'"3"^^<{XSD}integer>'


def test_iri_percent_encodes_forbidden_characters_only():
    assert iri("http://x.org/a b<c>\"{|}^`\\") == "<http://x.org/a%20b%3Cc%3E%22%7B%7C%7D%5E%60%5C>"
    assert iri("http://dbpedia.org/resource/Paré_(x)?y=1#z") == "<http://dbpedia.org/resource/Paré_(x)?y=1#z>"


def test_tag_slug_normalises_case_space_and_punctuation():
    assert tag_slug("Sci-Fi") == tag_slug(" sci  fi ") == tag_slug("SCI-FI!") == "sci-fi"
    assert tag_slug("android(s)/cyborg(s)") == "android-s-cyborg-s"
    assert tag_slug("Léon") == "léon"
    assert tag_slug("!!!") == "!!!"
    assert tag_slug("   ") == ""


def test_tricky_literals_roundtrip_through_pyoxigraph_and_rdflib(tmp_path):
    rdflib = pytest.importorskip("rdflib")
    title = 'He said "hi" \\ back\nnew line\r\tAmélie – 東京 😀'
    root = tmp_path / "ml"
    one_line = title.replace("\n", " ").replace("\r", " ")  # u.item cannot hold line breaks
    write(root, "u.item", f"1|{one_line}|01-Jan-1995||u|" + "|".join(["0"] * 19) + "\n")
    write(root, "u.data", "1\t1\t5\t0\n")
    out = tmp_path / "o.nt"
    convert_movielens_100k(root, out, kg=False, dbpedia=False)
    # The source format cannot hold newlines in titles, so test the literal writer directly too.
    line = f"<http://x/s> <http://x/p> {literal(title)} .\n"
    (tmp_path / "t.nt").write_text(line, encoding="utf-8")
    assert read_triples(tmp_path / "t.nt") == {("http://x/s", "http://x/p", (title, XSD + "string"))}
    g = rdflib.Graph().parse(tmp_path / "t.nt", format="nt")
    assert [str(o) for o in g.objects()] == [title]
    assert ("https://w3id.org/kgrec/data/movielens-100k/item/1", KGR + "title",
            (one_line, XSD + "string")) in read_triples(out)


# ---------------------------------------------------------------------------------- MovieLens-100K
def ml100k_folder(root: Path) -> Path:
    flags = ["0"] * 19
    toy = ["1" if g in (3, 4, 5) else "0" for g in range(19)]  # Animation, Children's, Comedy
    odd = ["1"] + flags[1:]  # only "unknown": no genre edge
    write(root, "u.item",
          f"1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/x|{'|'.join(toy)}\n"
          f"2|Café \"Noir\" \\ (1996)|||http://us.imdb.com/y|{'|'.join(odd)}\n",
          encoding="latin-1")
    write(root, "u.genre", "\n".join(f"{g}|{i}" for i, g in enumerate(
        ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
         "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
         "Thriller", "War", "Western"])) + "\n\n")
    write(root, "u.user", "7|24|M|technician|85711\n")
    write(root, "u.data", "7\t1\t3\t881250949\n8\t2\t5\t0\n")
    write(root, "recbole/ml-100k.link", "item_id:token\tentity_id:token\n1\tm.0dyb1\n")
    write(root, "recbole/ml-100k.kg", "head_id:token\trelation_id:token\ttail_id:token\n"
                                       "m.0dyb1\tfilm.film.directed_by\tm.06pj8\n"
                                       "m.06pj8\tfilm.director.film\tm.0dyb1\n")
    write(root, "dbpedia/map.csv", "item_id::string,URI::string\n1,http://dbpedia.org/resource/Toy_Story\n2,\n")
    write(root, "dbpedia/enriched.csv",
          "item_id::string,abstract::string,producer::string_list,distributor::string_list,"
          "writer::string_list,cinematography::string_list,subject::string_list,"
          "starring::string_list,director::string_list\n"
          '1,"Toy Story is a ""film"".\nIt is by Pixar.",,,,,'
          "http://dbpedia.org/resource/Category:Pixar::http://dbpedia.org/resource/Category:1995_films,"
          "http://dbpedia.org/resource/Tom_Hanks::http://dbpedia.org/resource/Tim_Allen,"
          "http://dbpedia.org/resource/John_Lasseter\n")
    return root


def test_movielens_100k_exact_triples(tmp_path):
    root = ml100k_folder(tmp_path / "ml")
    out = tmp_path / "out" / "ml.nt.gz"
    counts = convert_movielens_100k(root, out)
    B = "https://w3id.org/kgrec/data/movielens-100k/"
    i1, i2, u7, u8 = B + "item/1", B + "item/2", B + "user/7", B + "user/8"
    INT = XSD + "integer"
    expected = {
        (u7, RDF_TYPE, KGR + "User"), (u7, KGR + "age", ("24", INT)), (u7, KGR + "gender", ("M", XSD + "string")),
        (u7, KGR + "occupation", ("technician", XSD + "string")), (u7, KGR + "zip", ("85711", XSD + "string")),
        (u8, RDF_TYPE, KGR + "User"),
        (i1, RDF_TYPE, KGR + "Item"), (i1, KGR + "title", ("Toy Story (1995)", XSD + "string")),
        (i1, KGR + "year", ("1995", INT)),
        (i1, KGR + "genre", B + "genre/Animation"), (i1, KGR + "genre", B + "genre/Children's"),
        (i1, KGR + "genre", B + "genre/Comedy"),
        (B + "genre/Animation", LABEL, ("Animation", XSD + "string")),
        (B + "genre/Children's", LABEL, ("Children's", XSD + "string")),
        (B + "genre/Comedy", LABEL, ("Comedy", XSD + "string")),
        (i2, RDF_TYPE, KGR + "Item"), (i2, KGR + "title", ('Café "Noir" \\ (1996)', XSD + "string")),
        *event(B, 1, "7", "1", ("3", INT), "1997-12-04T15:55:49Z"),
        *event(B, 2, "8", "2", ("5", INT), "1970-01-01T00:00:00Z"),
        (i1, SAME, FB + "m.0dyb1"),
        (FB + "m.0dyb1", FB + "film.film.directed_by", FB + "m.06pj8"),
        (FB + "m.06pj8", FB + "film.director.film", FB + "m.0dyb1"),
        (i1, SAME, DBR + "Toy_Story"),
        (i1, DBO + "abstract", ('Toy Story is a "film".\nIt is by Pixar.', "en")),
        (i1, "http://purl.org/dc/terms/subject", DBR + "Category:Pixar"),
        (i1, "http://purl.org/dc/terms/subject", DBR + "Category:1995_films"),
        (i1, DBO + "starring", DBR + "Tom_Hanks"), (i1, DBO + "starring", DBR + "Tim_Allen"),
        (i1, DBO + "director", DBR + "John_Lasseter"),
    }
    got = read_triples(out)
    assert got - expected == set()
    assert expected - got == set()
    assert counts == {"users": 2, "items": 2, "interactions": 2, "genres": 3, "genre_edges": 3,
                      "same_as_freebase": 1, "freebase_triples": 2, "dbpedia_items": 1,
                      "same_as_dbpedia": 1, "dbpedia_same_as_shared_skipped": 0, "dbpedia_edges": 5,
                      "abstracts": 1, "triples": len(expected)}
    # Reproducible bytes: same input, same gzip file (no name / mtime in the header).
    out2 = tmp_path / "again.nt.gz"
    convert_movielens_100k(root, out2)
    assert out2.read_bytes() == out.read_bytes()


def test_movielens_100k_kg_and_dbpedia_off(tmp_path):
    root = ml100k_folder(tmp_path / "ml")
    counts = convert_movielens_100k(root, tmp_path / "ml.nt", kg=False, dbpedia=False)
    got = read_triples(tmp_path / "ml.nt")
    assert not any(p == SAME or p.startswith(FB) or p.startswith(DBO) for _, p, _ in got)
    assert "same_as_freebase" not in counts and "dbpedia_items" not in counts
    assert counts["triples"] == len(got) == 17 + 10


def test_movielens_100k_shared_dbpedia_iri_gets_no_same_as(tmp_path):
    root = ml100k_folder(tmp_path / "ml")
    write(root, "dbpedia/map.csv", "item_id::string,URI::string\n1,http://dbpedia.org/resource/Toy_Story\n"
                                   "2,http://dbpedia.org/resource/Toy_Story\n")
    counts = convert_movielens_100k(root, tmp_path / "ml.nt", kg=False)
    got = read_triples(tmp_path / "ml.nt")
    assert not any(p == SAME for _, p, _ in got)
    assert counts["same_as_dbpedia"] == 0 and counts["dbpedia_same_as_shared_skipped"] == 2
    # The facts stay on the item even without the link.
    assert counts["dbpedia_edges"] == 5


def test_movielens_100k_bad_inputs_name_file_and_line(tmp_path):
    root = ml100k_folder(tmp_path / "ml")
    write(root, "u.data", "7\t1\t3\t881250949\n8\t2\t5\n")
    with pytest.raises(SourceFormatError, match=r"u\.data:2: expected 4 fields"):
        convert_movielens_100k(root, tmp_path / "x.nt")
    write(root, "u.data", "7\t1\tfive\t881250949\n")
    with pytest.raises(SourceFormatError, match=r"u\.data:1: 'rating' must be an integer \(got 'five'\)"):
        convert_movielens_100k(root, tmp_path / "x.nt")
    write(root, "u.data", "7\t99\t3\t881250949\n")
    with pytest.raises(SourceFormatError, match=r"u\.data:1: item 99 is not in u\.item"):
        convert_movielens_100k(root, tmp_path / "x.nt")
    assert not (tmp_path / "x.nt").exists() and not (tmp_path / "x.nt.tmp").exists()
    write(root, "u.data", "7\t1\t3\t881250949\n")
    write(root, "dbpedia/enriched.csv", "item_id::string,abstract::string\n1,x\n")
    with pytest.raises(SourceFormatError, match=r"enriched\.csv:1: header lacks column\(s\) \['director'"):
        convert_movielens_100k(root, tmp_path / "x.nt")
    (root / "u.item").unlink()
    with pytest.raises(KgrecError, match=r"u\.item' is missing"):
        convert_movielens_100k(root, tmp_path / "x.nt")


# --------------------------------------------------------------------------- MovieLens latest-small
def ml_small_folder(root: Path) -> Path:
    write(root, "movies.csv", 'movieId,title,genres\n'
                              '1,Toy Story (1995),Adventure|Children\n'
                              '2,"Ghost, The ""Great"" (1990)",(no genres listed)\n'
                              '3,Death Note: Desu nôto (2006–2007),Anime\n'
                              '4,Black Mirror,Drama\n')
    write(root, "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.5,964982703\n2,3,0.5,0\n")
    write(root, "tags.csv", "userId,movieId,tag,timestamp\n1,1,Sci-Fi,1\n2,1,sci fi,2\n3,1,sci fi,3\n"
                            "1,2,sci-fi,4\n1,2,funny,5\n")
    write(root, "links.csv", "movieId,imdbId,tmdbId\n1,0114709,862\n2,0099653,\n")
    return root


def test_movielens_latest_small_exact_triples(tmp_path):
    root = ml_small_folder(tmp_path / "mls")
    counts = convert_movielens_latest_small(root, tmp_path / "o.nt.gz", tags=True)
    B = "https://w3id.org/kgrec/data/movielens-small/"
    S, INT, DEC = XSD + "string", XSD + "integer", XSD + "decimal"
    it = {n: f"{B}item/{n}" for n in range(1, 5)}
    expected = {
        *((it[n], RDF_TYPE, KGR + "Item") for n in it),
        (it[1], KGR + "title", ("Toy Story (1995)", S)), (it[1], KGR + "year", ("1995", INT)),
        (it[2], KGR + "title", ('Ghost, The "Great" (1990)', S)), (it[2], KGR + "year", ("1990", INT)),
        (it[3], KGR + "title", ("Death Note: Desu nôto (2006–2007)", S)), (it[3], KGR + "year", ("2006", INT)),
        (it[4], KGR + "title", ("Black Mirror", S)),
        (it[1], KGR + "genre", B + "genre/Adventure"), (it[1], KGR + "genre", B + "genre/Children"),
        (it[3], KGR + "genre", B + "genre/Anime"), (it[4], KGR + "genre", B + "genre/Drama"),
        *((B + "genre/" + g, LABEL, (g, S)) for g in ("Adventure", "Children", "Anime", "Drama")),
        (B + "user/1", RDF_TYPE, KGR + "User"), (B + "user/2", RDF_TYPE, KGR + "User"),
        *event(B, 1, "1", "1", ("4.5", DEC), "2000-07-30T18:45:03Z"),
        *event(B, 2, "2", "3", ("0.5", DEC), "1970-01-01T00:00:00Z"),
        # Three spellings of one tag on item 1 -> one edge, labelled with the most frequent one.
        (B + "tag/sci-fi", LABEL, ("sci fi", S)), (B + "tag/funny", LABEL, ("funny", S)),
        (it[1], KGR + "tag", B + "tag/sci-fi"), (it[2], KGR + "tag", B + "tag/sci-fi"),
        (it[2], KGR + "tag", B + "tag/funny"),
        (it[1], KGR + "imdb", ("tt0114709", S)), (it[2], KGR + "imdb", ("tt0099653", S)),
    }
    got = read_triples(tmp_path / "o.nt.gz")
    assert got - expected == set()
    assert expected - got == set()
    assert counts == {"users": 2, "items": 4, "interactions": 2, "genres": 4, "genre_edges": 4,
                      "items_with_year": 3, "tags": 2, "tag_edges": 3, "tag_applications": 5,
                      "imdb_links": 2, "triples": len(expected)}


def test_movielens_latest_small_default_has_no_tag_edges_nor_tag_text(tmp_path):
    """Leak-free by default: tags say who met which item, so they need ``tags=True``."""
    loader = pytest.importorskip("kgrec.data.loader")
    from kgrec.data.text import item_texts

    root = ml_small_folder(tmp_path / "mls")
    default = convert_movielens_latest_small(root, tmp_path / "d.nt")
    got = read_triples(tmp_path / "d.nt")
    B = "https://w3id.org/kgrec/data/movielens-small/"
    assert not [t for t in got if t[1] == KGR + "tag"]
    assert not [t for t in got if B + "tag/" in t[0] or B + "tag/" in str(t[2])]  # no tag node, no label
    tag_words = {"sci fi", "sci-fi", "Sci-Fi", "funny"}
    assert not [t for t in got if isinstance(t[2], tuple) and t[2][0] in tag_words]
    assert "tags" not in default and "tag_edges" not in default and "tag_applications" not in default
    texts = item_texts(loader.load(tmp_path / "d.nt"))
    assert not [x for x in texts if "tag" in x or "funny" in x or "sci" in x.lower()]
    # tags.csv is not even read by default: a folder without it converts
    (root / "tags.csv").unlink()
    assert convert_movielens_latest_small(root, tmp_path / "n.nt") == default

    # asked for explicitly, the tag edges and their labels (the tag text) are there
    root = ml_small_folder(tmp_path / "mls2")
    counts = convert_movielens_latest_small(root, tmp_path / "t.nt", tags=True)
    with_tags = read_triples(tmp_path / "t.nt")
    it1, it2 = B + "item/1", B + "item/2"
    assert {t for t in with_tags if t[1] == KGR + "tag"} == {
        (it1, KGR + "tag", B + "tag/sci-fi"), (it2, KGR + "tag", B + "tag/sci-fi"), (it2, KGR + "tag", B + "tag/funny")}
    assert with_tags - got == {*{t for t in with_tags if t[1] == KGR + "tag"},
                               (B + "tag/sci-fi", LABEL, ("sci fi", XSD + "string")),
                               (B + "tag/funny", LABEL, ("funny", XSD + "string"))}
    assert (counts["tags"], counts["tag_edges"], counts["triples"]) == (2, 3, default["triples"] + 5)
    texts = item_texts(loader.load(tmp_path / "t.nt"))
    assert texts[:2] == ["Toy Story (1995). genre: Adventure, Children. tag: sci fi.",
                         'Ghost, The "Great" (1990). tag: sci fi, funny.']


def test_movielens_latest_small_without_tags_and_links(tmp_path):
    root = ml_small_folder(tmp_path / "mls")
    counts = convert_movielens_latest_small(root, tmp_path / "o.nt", tags=False, links=False)
    preds = Counter(p for _, p, _ in read_triples(tmp_path / "o.nt"))
    assert preds[KGR + "tag"] == 0 and preds[KGR + "imdb"] == 0
    assert "tags" not in counts and "imdb_links" not in counts


def test_movielens_latest_small_tag_events_add_exactly_the_tagging_events(tmp_path):
    root = ml_small_folder(tmp_path / "mls")
    plain = convert_movielens_latest_small(root, tmp_path / "plain.nt", tags=True)
    counts = convert_movielens_latest_small(root, tmp_path / "o.nt", tags=True, tag_events=True)
    B = "https://w3id.org/kgrec/data/movielens-small/"
    S = XSD + "string"

    def tagging(n, user, item, text, time):
        e = f"{B}tagging/{n}"
        return {(e, RDF_TYPE, KGR + "Tagging"), (e, KGR + "user", B + "user/" + user),
                (e, KGR + "item", B + "item/" + item), (e, KGR + "text", (text, S)),
                (e, KGR + "timestamp", (time, XSD + "dateTime"))}

    # One event per tags.csv row, in file order, the tag as written; user 3 only tags.
    expected = {*tagging(1, "1", "1", "Sci-Fi", "1970-01-01T00:00:01Z"),
                *tagging(2, "2", "1", "sci fi", "1970-01-01T00:00:02Z"),
                *tagging(3, "3", "1", "sci fi", "1970-01-01T00:00:03Z"),
                *tagging(4, "1", "2", "sci-fi", "1970-01-01T00:00:04Z"),
                *tagging(5, "1", "2", "funny", "1970-01-01T00:00:05Z"),
                (B + "user/3", RDF_TYPE, KGR + "User")}
    assert read_triples(tmp_path / "o.nt") - read_triples(tmp_path / "plain.nt") == expected
    assert read_triples(tmp_path / "plain.nt") <= read_triples(tmp_path / "o.nt")
    assert counts == {**plain, "users": 3, "tag_events": 5, "triples": plain["triples"] + len(expected)}
    # tag events without the item -> tag edges
    counts = convert_movielens_latest_small(root, tmp_path / "e.nt", tags=False, links=False, tag_events=True)
    assert KGR + "tag" not in {p for _, p, _ in read_triples(tmp_path / "e.nt")}
    assert (counts["tag_events"], counts["tag_applications"], "tag_edges" in counts) == (5, 5, False)


def test_movielens_latest_small_tag_events_bad_timestamp(tmp_path):
    root = ml_small_folder(tmp_path / "mls")
    write(root, "tags.csv", "userId,movieId,tag,timestamp\n1,1,funny,1\n1,2,dull,yesterday\n")
    with pytest.raises(SourceFormatError, match=r"tags\.csv:3: 'timestamp' must be an integer \(got 'yesterday'\)"):
        convert_movielens_latest_small(root, tmp_path / "o.nt", tag_events=True)
    # the tag edges alone never read the time (nor need the column)
    write(root, "tags.csv", "userId,movieId,tag\n1,1,funny\n")
    assert convert_movielens_latest_small(root, tmp_path / "o.nt", tags=True)["tag_edges"] == 1
    with pytest.raises(SourceFormatError, match=r"tags\.csv:1: header lacks column\(s\) \['timestamp'\]"):
        convert_movielens_latest_small(root, tmp_path / "o.nt", tag_events=True)
    assert not (tmp_path / "o.nt.tmp").exists()


def test_movielens_latest_small_tag_events_load_as_two_scenarios(tmp_path):
    loader = pytest.importorskip("kgrec.data.loader")
    root = ml_small_folder(tmp_path / "mls")
    # with the tag edges too, to check that the behaviours mapping keeps them out of the KG
    convert_movielens_latest_small(root, tmp_path / "o.nt", tags=True, tag_events=True)
    kg = loader.load(tmp_path / "o.nt", mapping="kgrec-behaviours")
    assert kg.scenarios == ["rating", "tag"]
    # user 1 tags item 2 twice: one interaction per (user, item) pair and scenario (latest time, both texts)
    assert kg.stats()["interactions_per_scenario"] == {"rating": 2, "tag": 4}
    assert kg.warnings[REPEATS_WARNING] == 1
    B = "https://w3id.org/kgrec/data/movielens-small/"
    inter = kg.interactions
    per = Counter((kg.users.labels[u].rsplit("/", 1)[1], kg.scenarios[s])
                  for u, s in zip(inter.user.tolist(), inter.scenario_ids.tolist()))
    assert per == {("1", "rating"): 1, ("2", "rating"): 1, ("1", "tag"): 2, ("2", "tag"): 1, ("3", "tag"): 1}
    # tag events: weight 1, their time and their text; ratings keep their rating and no text
    tag = inter.scenario_ids == 1
    assert inter.weight[tag].tolist() == [1.0] * 4 and sorted(inter.time[tag].tolist()) == [1, 2, 3, 5]
    assert sorted(inter.weight[~tag].tolist()) == [0.5, 4.5]
    texts = {(kg.users.labels[int(inter.user[k])], kg.items.labels[int(inter.item[k])], kg.interaction_text[k])
             for k in range(len(inter)) if tag[k]}
    assert texts == {(B + "user/1", B + "item/1", "Sci-Fi"), (B + "user/2", B + "item/1", "sci fi"),
                     (B + "user/3", B + "item/1", "sci fi"), (B + "user/1", B + "item/2", "sci-fi\nfunny")}
    assert [kg.interaction_text[k] for k in range(len(inter)) if not tag[k]] == [None, None]
    assert KGR + "tag" not in kg.relations  # excluded by the mapping: tags are behaviour here
    # the default mapping reads both event kinds as interactions of one scenario
    with pytest.warns(UserWarning, match="event without weight"):
        one = loader.load(tmp_path / "o.nt")
    # one scenario: user 1's rating and tag of item 1 merge too (largest weight, latest time)
    assert one.scenarios == ["default"] and len(one.interactions) == 5 and KGR + "tag" in one.relations
    assert one.warnings[REPEATS_WARNING] == 2


def test_movielens_latest_small_bad_rating(tmp_path):
    root = ml_small_folder(tmp_path / "mls")
    write(root, "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.5,1\n1,2,good,2\n")
    with pytest.raises(SourceFormatError, match=r"ratings\.csv:3: 'rating' must be a decimal number \(got 'good'\)"):
        convert_movielens_latest_small(root, tmp_path / "o.nt")
    write(root, "ratings.csv", "userId,movieId,rating,timestamp\n1,77,4.5,1\n")
    with pytest.raises(SourceFormatError, match=r"ratings\.csv:2: movieId 77 is not in movies\.csv"):
        convert_movielens_latest_small(root, tmp_path / "o.nt")


# ------------------------------------------------------------------------------------------ Last.fm
def lastfm_folder(root: Path) -> Path:
    write(root, "user_artists.dat", "userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n3\t51\t7\n")
    write(root, "item_index2entity_id.txt", "51\t0\r\n")
    write(root, "kg.txt", "0\tmusic.artist.origin\t1\r\n2\tmusic.artist.genre\t0\r\n")
    return root


def test_lastfm_exact_triples(tmp_path):
    root = lastfm_folder(tmp_path / "fm")
    counts = convert_lastfm(root, tmp_path / "fm.nt.gz")
    B = "https://w3id.org/kgrec/data/lastfm/"
    INT = XSD + "integer"
    expected = {
        (B + "user/2", RDF_TYPE, KGR + "User"), (B + "user/3", RDF_TYPE, KGR + "User"),
        (B + "item/51", RDF_TYPE, KGR + "Item"), (B + "item/52", RDF_TYPE, KGR + "Item"),
        *event(B, 1, "2", "51", ("13883", INT)), *event(B, 2, "2", "52", ("11690", INT)),
        *event(B, 3, "3", "51", ("7", INT)),
        (B + "item/51", SAME, B + "entity/0"),
        (B + "entity/0", B + "relation/music.artist.origin", B + "entity/1"),
        (B + "entity/2", B + "relation/music.artist.genre", B + "entity/0"),
    }
    got = read_triples(tmp_path / "fm.nt.gz")
    assert got - expected == set()
    assert expected - got == set()
    assert counts == {"users": 2, "items": 2, "interactions": 3, "skipped_unlinked": 0, "same_as": 1,
                      "kg_triples": 2, "relations": 2, "triples": len(expected)}


def test_lastfm_linked_only_drops_artists_without_entity(tmp_path):
    root = lastfm_folder(tmp_path / "fm")
    counts = convert_lastfm(root, tmp_path / "fm.nt", linked_only=True)
    got = read_triples(tmp_path / "fm.nt")
    items = {o for _, p, o in got if p == KGR + "item"}
    assert items == {"https://w3id.org/kgrec/data/lastfm/item/51"}
    assert (counts["interactions"], counts["items"], counts["skipped_unlinked"]) == (2, 1, 1)


# ------------------------------------------------------------------------------------ Book-Crossing
def test_book_crossing_exact_triples(tmp_path):
    root = tmp_path / "bx"
    write(root, "ratings_final.txt", "0\t1\t1\n0\t2\t0\n1\t1\t1\n")
    write(root, "kg_final.txt", "1\t0\t5\n5\t1\t6\n")
    counts = convert_book_crossing(root, tmp_path / "bx.nt.gz")
    B = "https://w3id.org/kgrec/data/book-crossing/"
    expected = {
        (B + "item/1", RDF_TYPE, KGR + "Item"), (B + "item/2", RDF_TYPE, KGR + "Item"),
        (B + "item/1", SAME, B + "entity/1"), (B + "item/2", SAME, B + "entity/2"),
        (B + "user/0", RDF_TYPE, KGR + "User"), (B + "user/1", RDF_TYPE, KGR + "User"),
        (B + "user/0", KGR + "interactedWith", B + "item/1"),
        (B + "user/1", KGR + "interactedWith", B + "item/1"),
        (B + "entity/1", B + "relation/0", B + "entity/5"),
        (B + "entity/5", B + "relation/1", B + "entity/6"),
    }
    got = read_triples(tmp_path / "bx.nt.gz")
    assert got - expected == set()
    assert expected - got == set()
    assert counts == {"users": 2, "items": 2, "interactions": 2, "negatives_skipped": 1, "same_as": 2,
                      "kg_triples": 2, "relations": 2, "triples": len(expected)}


def test_book_crossing_bad_label(tmp_path):
    root = tmp_path / "bx"
    write(root, "ratings_final.txt", "0\t1\t1\n0\t2\t2\n")
    write(root, "kg_final.txt", "")
    with pytest.raises(SourceFormatError, match=r"ratings_final\.txt:2: 'label' must be 0 or 1 \(got '2'\)"):
        convert_book_crossing(root, tmp_path / "bx.nt")


# ------------------------------------------------------------------------------------------ registry
def test_convert_registry_and_errors(tmp_path):
    assert set(CONVERTERS) == {"movielens-100k", "movielens-small", "lastfm", "book-crossing"}
    lastfm_folder(tmp_path / "lastfm-kg")
    counts = convert("lastfm", tmp_path, tmp_path / "o.nt")
    assert counts["interactions"] == 3
    with pytest.raises(KgrecError, match=r"'name' must be one of .* \(got 'netflix'\)"):
        convert("netflix", tmp_path, tmp_path / "o.nt")
    with pytest.raises(KgrecError, match=r"book-crossing-kg' is missing"):
        convert("book-crossing", tmp_path, tmp_path / "o.nt")


# ------------------------------------------------------------------------------------------ real data
ML100K = DATA_ROOT / "movielens-100k"
needs_ml100k = pytest.mark.skipif(not (ML100K / "u.data").is_file(), reason=f"{ML100K} not available")


def _kg_file(name: str) -> list[tuple[str, str, str]]:
    lines = (ML100K / "recbole" / name).read_text(encoding="utf-8").splitlines()[1:]
    return [tuple(x.split("\t")) for x in lines if x]


@pytest.fixture(scope="module")
def real_ml100k(tmp_path_factory):
    if not (ML100K / "u.data").is_file():
        pytest.skip(f"{ML100K} not available")
    out = tmp_path_factory.mktemp("real") / "movielens-100k.nt.gz"
    counts = convert_movielens_100k(ML100K, out)
    return out, counts


@pytest.mark.slow
@needs_ml100k
def test_real_movielens_100k_counts(real_ml100k):
    out, counts = real_ml100k
    got = read_triples(out)
    by_pred = Counter(p for _, p, _ in got)
    types = Counter(o for _, p, o in got if p == RDF_TYPE)
    assert types[KGR + "User"] == counts["users"] == 943
    assert types[KGR + "Item"] == counts["items"] == 1682
    assert types[KGR + "Interaction"] == counts["interactions"] == by_pred[KGR + "timestamp"] == 100_000
    fb_links = {(s, o) for s, p, o in got if p == SAME and o.startswith(FB)}
    assert len(fb_links) == len({s for s, _ in fb_links}) == counts["same_as_freebase"] == 1598
    kg = _kg_file("ml-100k.kg")
    assert counts["freebase_triples"] == len(kg) == sum(n for p, n in by_pred.items() if p.startswith(FB))
    assert len({s for s, p, _ in got if p == DBO + "abstract"}) == 1411
    assert counts["triples"] == len(got)


@pytest.mark.slow
@needs_ml100k
def test_real_movielens_100k_loads(real_ml100k):
    loader = pytest.importorskip("kgrec.data.loader")
    out, counts = real_ml100k
    kg = loader.load(out)
    assert (kg.num_users, kg.num_items, len(kg.interactions)) == (943, 1682, 100_000)
    # Every ml-100k.kg triple touches a linked film, and links are one-to-one, so after the
    # owl:sameAs merge each Freebase relation keeps exactly its file count.
    stats = kg.stats()["triples_per_relation"]
    want = Counter(FB + r for _, r, _ in _kg_file("ml-100k.kg"))
    assert {r: n for r, n in stats.items() if r.startswith(FB)} == dict(want)
    # Per linked item: the Freebase triples that name its entity end up on the item.
    link = {e: i for i, e in _kg_file("ml-100k.link")}
    per_item = Counter()
    for h, _, t in _kg_file("ml-100k.kg"):
        for e in {h, t} & link.keys():
            per_item[link[e]] += 1
    fb_rel = [kg.relations.id(r) for r in stats if r.startswith(FB)]
    tr = kg.triples[(kg.triples[:, 1:2] == __import__("torch").tensor(fb_rel)).any(1)]
    base = "https://w3id.org/kgrec/data/movielens-100k/item/"
    for iid in ("1", "50", "1682"):
        if iid not in link.values():
            continue
        x = kg.items.id(base + iid)
        assert int(((tr[:, 0] == x) | (tr[:, 2] == x)).sum()) == per_item[iid]
