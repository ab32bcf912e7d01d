"""The exact-span benchmark: reproducible from its seed, spans point exactly at real spliced passages."""

from __future__ import annotations

import collections
import json

import pytest

from tokfilter.cli import main
from tokfilter.corpus import Document, demo
from tokfilter.errors import UserError
from tokfilter.labels.benchmark import (
    SPLITS,
    BenchmarkConfig,
    build_benchmark,
    load_benchmark,
    make_benchmark,
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    bench = build_benchmark(out, seed=0)
    return out, bench


def test_same_seed_gives_identical_files(built, tmp_path):
    out, _ = built
    assert main(["labels", "benchmark", "--out", str(tmp_path), "--seed", "0"]) == 0
    for name in ["manifest.json"] + [f"{s}.jsonl.gz" for s in SPLITS] + [f"{s}.labels.jsonl" for s in SPLITS]:
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name
    other = build_benchmark(None, seed=1)
    ours = load_benchmark(out, "valid")
    assert [d.document.text for d in other["valid"]] != [d.document.text for d in ours]


def test_spans_point_at_spliced_passages(built):
    out, bench = built
    source = {d.id: d for d in demo.load_demo()}
    kinds = collections.Counter()
    for split in SPLITS:
        for item in load_benchmark(out, split):
            doc = item.document
            assert doc.meta["split"] == split
            passage = doc.meta.get("passage")
            if passage is not None:
                kinds["spliced"] += 1
                host, donor = source[doc.id], source[passage["id"]]
                start, end = passage["start"], passage["end"]
                assert item.spans == [(start, end, 1.0)]
                piece = doc.text[start:end]
                assert piece in donor.text and donor.domain == "forget" and host.domain in ("retain", "general")
                assert donor.meta["split"] == split  # passages never cross splits
                assert 30 <= len(piece.split()) <= 150
                at = donor.text.index(piece)  # sentence-aligned: whitespace (or the text's edge) on both sides
                assert at == 0 or donor.text[at - 1].isspace()
                assert at + len(piece) == len(donor.text) or donor.text[at + len(piece)].isspace()
                # removing the passage gives the host back up to the separator we inserted
                rest = doc.text[:start] + doc.text[end:]
                assert rest.replace("\n\n", "").replace(" ", "") == host.text.replace("\n\n", "").replace(" ", "")
            elif doc.domain == "forget":
                kinds["forget"] += 1
                assert item.spans == [(0, len(doc.text), 1.0)]
            else:
                kinds["untouched"] += 1
                assert item.spans == []
                assert doc.text == source[doc.id].text
    share = kinds["spliced"] / (kinds["spliced"] + kinds["untouched"])
    assert 0.35 < share < 0.45
    assert kinds["forget"] > 500
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 0
    assert sum(c["documents"] for c in manifest["counts"].values()) == sum(len(v) for v in bench.values())


def test_reverse_splices_keep_the_passage_out_of_the_forget_spans():
    """splice_fraction_forget: a short real retain/general passage inside a whole forget document is not forget; its
    donor leaves the benchmark (no source document on both sides of a fold); off by default, unchanged output."""
    docs = [d for d in demo.load_demo() if d.meta.get("split") == "valid"]
    source = {d.id: d for d in docs}
    plain = make_benchmark(docs, BenchmarkConfig(seed=0))["valid"]
    config = BenchmarkConfig(seed=0, splice_fraction_forget=0.5)
    reverse = make_benchmark(docs, config)["valid"]
    assert reverse == make_benchmark(docs, config)["valid"]  # deterministic
    hosts = [item for item in reverse if item.document.domain == "forget" and "passage" in item.document.meta]
    whole_before = sum(1 for item in plain if item.document.domain == "forget")
    whole_after = sum(1 for item in reverse if item.document.domain == "forget" and "passage" not in
                      item.document.meta)
    assert abs(len(hosts) - 0.5 * whole_before) <= 2 and whole_after + len(hosts) == whole_before
    ids = collections.Counter(i for item in reverse for i in
                              {item.document.id, (item.document.meta.get("passage") or {}).get("id")} - {None})
    assert max(ids.values()) == 1  # every source document's text appears in exactly one benchmark document
    for item in hosts:
        doc, passage = item.document, item.document.meta["passage"]
        start, end = passage["start"], passage["end"]
        piece = doc.text[start:end]
        assert passage["domain"] in ("retain", "general") and piece in source[passage["id"]].text
        assert config.reverse_min_words <= len(piece.split()) <= config.reverse_max_words
        assert [(s, e) for s, e, _ in item.spans] == [(a, b) for a, b in ((0, start), (end, len(doc.text))) if b > a]
        rest = doc.text[:start] + doc.text[end:]
        assert rest.replace("\n\n", "").replace(" ", "") == source[doc.id].text.replace("\n\n", "").replace(" ", "")
    assert len(reverse) == len(plain) - len(hosts)  # each reverse passage consumed one retain/general document
    # the forward splices are untouched by the reverse fraction
    forward = sorted((i.document for i in plain if "passage" in i.document.meta), key=lambda d: d.id)
    assert forward == sorted((i.document for i in reverse if "passage" in i.document.meta and
                              i.document.domain != "forget"), key=lambda d: d.id)


def test_rejects_untagged_documents():
    with pytest.raises(UserError, match="domain"):
        make_benchmark([Document("a", "Some text.", "medical")])


def test_untagged_split_is_hashed_and_small_corpus_works():
    docs = [Document(f"f{i}", "Fever and cough are common. " * 12 + "Rest is advised.", "forget") for i in range(40)]
    docs += [Document(f"r{i}", "Cells divide by mitosis.\n\nThe spindle forms. " * 5, "retain") for i in range(40)]
    bench = make_benchmark(docs, BenchmarkConfig(seed=3))
    spliced = [b for v in bench.values() for b in v if "passage" in b.document.meta]
    assert spliced
    assert sum(len(v) for v in bench.values()) + len(spliced) == 80  # each passage donor is used up
    assert {b.document.meta["split"] for v in bench.values() for b in v} == set(SPLITS)
    for item in spliced:
        (start, end, score), = item.spans
        assert item.document.text[start:end].startswith("Fever") and score == 1.0


def test_cli_builds_from_tagged_files(tmp_path, capsys):
    forget = tmp_path / "med.jsonl"
    retain = tmp_path / "bio.jsonl"
    sentence = "The patient was given antibiotics for the infection. "
    forget.write_text("".join(json.dumps({"id": f"m{i}", "text": sentence * 8}) + "\n" for i in range(30)))
    retain.write_text("".join(json.dumps({"id": f"b{i}", "text": "Leaves make sugar.\n\nRoots take water. " * 6})
                              + "\n" for i in range(30)))
    out = tmp_path / "bench"
    assert main(["labels", "benchmark", "--out", str(out), "--seed", "5", "--source", f"forget={forget}",
                 f"retain={retain}"]) == 0
    counts = json.loads(capsys.readouterr().out)["counts"]
    assert sum(c["documents"] for c in counts.values()) > 40
    assert main(["labels", "benchmark", "--out", str(out), "--source", str(forget)]) == 2  # untagged domain


def test_cli_refuses_a_source_without_forget_text(tmp_path, capsys):
    retain = tmp_path / "bio.jsonl"
    retain.write_text("".join(json.dumps({"id": f"b{i}", "text": "Leaves make sugar.\n\nRoots take water. " * 6})
                              + "\n" for i in range(30)))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    out = tmp_path / "bench"
    for source in ([f"retain={retain}"], [f"forget={empty}", f"retain={retain}"]):
        assert main(["labels", "benchmark", "--out", str(out), "--source", *source]) == 2
        assert "no forget text" in capsys.readouterr().err
        assert not out.exists()
