"""The embedded demo corpus: three domains, three splits, provenance, and a byte-identical rebuild."""

from __future__ import annotations

import collections
import importlib.util
import sys

import pytest

from tokfilter.corpus import demo, read_corpus
from tokfilter.errors import UserError


def test_demo_has_domains_splits_and_sources():
    docs = demo.load_demo()
    assert {d.domain for d in docs} == {"forget", "retain", "general"}
    per = collections.Counter((d.domain, d.meta["split"]) for d in docs)
    for domain in demo.DOMAINS:
        for split in demo.SPLITS:
            assert per[(domain, split)] >= 20, (domain, split)
        train, total = per[(domain, "train")], sum(per[(domain, s)] for s in demo.SPLITS)
        assert 0.8 < train / total < 0.97
    words = collections.Counter()
    for d in docs:
        words[d.domain] += len(d.text.split())
        assert d.text.strip() and d.id
    # roughly balanced and within the size the brief allows
    assert min(words.values()) > 0.7 * max(words.values())
    assert 1_000_000 < sum(words.values()) < 2_500_000
    assert len({d.id for d in docs}) == len(docs)
    sources = {d.meta["source"] for d in docs}
    assert {"pubmedqa", "medquad", "go", "biology_textbooks", "bbc", "brown", "wikitext2"} <= sources


def test_demo_filters_and_reader_spec():
    valid_forget = demo.load_demo(split="valid", domains=["forget"])
    assert valid_forget and all(d.domain == "forget" and d.meta["split"] == "valid" for d in valid_forget)
    assert len(list(read_corpus("demo"))) == len(demo.load_demo())
    with pytest.raises(UserError):
        demo.load_demo(split="dev")
    sizes = sum(p.stat().st_size for p in demo.demo_files().values())
    assert sizes < 6_000_000
    assert (demo.DEMO_DIR / "PROVENANCE.md").exists()


def test_split_is_by_source_document():
    """Parts of one long source document (ID#k) never land in two splits."""
    split_of = collections.defaultdict(set)
    for d in demo.load_demo():
        split_of[d.id.split("#")[0]].add(d.meta["split"])
    assert all(len(s) == 1 for s in split_of.values())


def test_rebuild_is_byte_identical(shared_data, repo_root, tmp_path):
    script = repo_root / "scripts" / "build_demo_corpus.py"
    spec = importlib.util.spec_from_file_location("build_demo_corpus", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_demo_corpus"] = module
    spec.loader.exec_module(module)
    by_domain, _ = module.build(shared_data, seed=0)
    for domain, path in demo.demo_files().items():
        assert module.gzip_jsonl(by_domain[domain]) == path.read_bytes(), domain


@pytest.mark.parametrize("spec, domains, splits", [
    ("demo", {"forget", "retain", "general"}, {"train", "valid", "test"}),
    ("demo:forget", {"forget"}, {"train", "valid", "test"}),
    ("demo:retain:valid", {"retain"}, {"valid"}),
    ("demo::test", {"forget", "retain", "general"}, {"test"}),
])
def test_read_corpus_accepts_demo_spec_forms(spec, domains, splits):
    docs = list(read_corpus(spec))
    assert {d.domain for d in docs} == domains
    assert {d.meta["split"] for d in docs} == splits
    expected = demo.load_demo(split=None if len(splits) > 1 else next(iter(splits)),
                              domains=None if len(domains) > 1 else next(iter(domains)))
    assert [d.id for d in docs] == [d.id for d in expected]


def test_demo_spec_with_domain_tag_retags():
    docs = list(read_corpus("general=demo:forget:test"))
    assert docs and {d.domain for d in docs} == {"general"}
    assert len(docs) == len(demo.load_demo(split="test", domains="forget"))


@pytest.mark.parametrize("spec, message", [
    ("demo:medical", "'demo:medical': unknown demo domain 'medical' (expected one of forget, retain, general)"),
    ("demo:forget:dev", "'demo:forget:dev': unknown demo split 'dev' (expected one of train, valid, test)"),
    ("demo:forget:train:x", "'demo:forget:train:x': too many ':' parts"),
])
def test_demo_spec_errors_are_one_line(spec, message):
    with pytest.raises(UserError) as err:
        list(read_corpus(spec))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_demo_does_not_import_readers():
    """document <- demo <- readers: the demo module stands below the readers (no import circle)."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(demo))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "tokfilter.corpus.readers" not in imported and "tokfilter.corpus" not in imported
    assert "tokfilter.corpus.document" in imported
