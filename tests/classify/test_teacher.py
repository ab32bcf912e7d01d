"""The teacher-labelled training set: soft labels in the span contract, documents disjoint from the demo corpus, the
dev set and the natural training set, and added to a classifier's training documents only when asked."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tokfilter.classify.devset import load_devset
from tokfilter.classify.natural import (
    load_labelled,
    load_natural,
    source_ids,
    teacher_items,
    teacher_path,
    text_key,
)
from tokfilter.classify.settings import budget_settings
from tokfilter.corpus.demo import load_demo
from tokfilter.corpus.document import Document
from tokfilter.errors import UserError


@pytest.fixture(scope="module")
def teacher():
    return load_labelled(teacher_path())


def test_soft_labels_well_formed(teacher):
    assert len(teacher) >= 1000
    assert len({doc.id for doc, _ in teacher}) == len(teacher)
    assert len({text_key(doc.text) for doc, _ in teacher}) == len(teacher)
    scores = []
    for doc, spans in teacher:
        for start, end, score in spans:
            assert 0 <= start < end <= len(doc.text) and 0.05 <= score <= 1.0
            scores.append(score)
        for (_, end, _), (start, _, _) in zip(spans, spans[1:]):
            assert end <= start, doc.id
    assert len(set(scores)) > 10  # soft: many levels, not a hard 1.0 rule


def test_teacher_reads_sources_by_content(teacher):
    """Consumer-health answers come out mostly forget and sport news mostly keep, but neither all or nothing: the
    teacher labels content, not provenance."""
    def forget_share(source, prefix=""):
        chars = forget = 0
        for doc, spans in teacher:
            if doc.meta["source"] == source and doc.id.startswith(prefix):
                chars += len(doc.text)
                forget += sum(e - s for s, e, p in spans if p >= 0.5)
        return forget / chars
    assert 0.5 < forget_share("medquad_answers") < 0.98
    assert 0.0 < forget_share("bbc_news", "bbc/sport") < 0.15
    assert forget_share("go_definitions") < forget_share("hpo_definitions")
    record = json.loads((teacher_path() / "teacher.json").read_text(encoding="utf-8"))
    assert record["documents"] == len(teacher) and record["valid"]["f1"] > 0.8


def test_disjoint_from_demo_corpus_dev_set_and_natural_set(teacher):
    """No shared id and no shared 200-character stretch: every such stretch holds a whole 150-character piece of the
    reference starting at a multiple of 50, and no teacher document contains one."""
    documents = [doc for doc, _ in teacher]
    reference = load_demo() + load_devset()[0] + [doc for doc, _ in load_natural()]
    ids = {i for d in reference for i in source_ids(d.id)}
    assert not [d.id for d in documents if source_ids(d.id) & ids]
    norm = [re.sub(r"\s+", " ", d.text).strip().lower() for d in reference]
    pieces = {text[i:i + 150] for text in norm for i in range(0, max(1, len(text) - 149), 50)}
    for doc in documents:
        text = re.sub(r"\s+", " ", doc.text).strip().lower()
        assert not any(text[i:i + 150] in pieces for i in range(max(1, len(text) - 149))), doc.id


def test_teacher_items_exclude_by_source_id_and_text(teacher):
    assert teacher_items(0) == []
    assert len(teacher_items(2)) == 2 * len(teacher)
    chunk = next(doc for doc, _ in teacher if "#" in doc.id and "+" not in doc.id)
    group = next(doc for doc, _ in teacher if "+" in doc.id)
    other = next(doc for doc, _ in teacher if doc.id not in (chunk.id, group.id))
    exclude = [Document(chunk.id.split("#")[0], "the whole record", "general"),  # the record the chunk was cut from
               Document(group.id.split("#")[0].split("+")[1], "one definition", "retain"),  # one of a group
               Document("x", other.text.upper(), "general")]  # same text
    kept = teacher_items(1, exclude)
    assert len(kept) == len(teacher) - 3
    assert not {doc.text for doc, _ in kept} & {chunk.text, group.text, other.text}


def test_setting_validated():
    assert budget_settings("full", {"teacher_copies": 2})["teacher_copies"] == 2
    with pytest.raises(UserError, match="teacher_copies = -1"):
        budget_settings("full", {"teacher_copies": -1})


def test_training_adds_them(small_bench, tokenizer, tiny_budget, tmp_path):
    from tokfilter.classify.train import train_classifier

    items = {s: [(b.document, b.spans) for b in small_bench[s]] for s in ("train", "valid")}
    lines = []
    train_classifier("windowed", items["train"], items["valid"], tokenizer, tmp_path / "w", tiny_budget,
                     overrides={"teacher_copies": 1}, log=lines.append)
    expected = len(load_labelled(teacher_path()))
    assert f"classifier data: {expected:,} teacher-labelled documents added, each 1 times (classify/teacher)" in lines


@pytest.mark.slow
@pytest.mark.shared_data
def test_build_script_selects_the_shipped_documents(teacher, monkeypatch):
    """The build script's selection from ../shared/data gives exactly the shipped documents, in order (the labels
    need SmolLM2 and 20 minutes: not rebuilt here)."""
    shared = Path(__file__).resolve().parents[3] / "shared" / "data"
    if not shared.is_dir():
        pytest.skip(f"needs ../shared/data ({shared} absent)")
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "scripts"))
    import build_teacher_labels

    pool = build_teacher_labels.gather(shared, 0)
    assert [(d.id, d.text) for d in pool] == [(d.id, d.text) for d, _ in teacher]


@pytest.fixture()
def scripts(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "scripts"))


def word_offsets(text: str):
    import numpy as np

    return np.array([(m.start(), m.end()) for m in re.finditer(r"\S+", text)])


def test_relabel_keeps_exact_passage_and_takes_teacher_on_host(scripts):
    """scripts/teacher_relabel.py: the spliced passage keeps its exact labels (forget passage in a keep host, keep
    passage in a forget host), the host text gets the teacher's score in steps of 0.05, and no span crosses the
    passage's edges."""
    import numpy as np
    import teacher_relabel

    from tokfilter.labels.benchmark import BenchmarkConfig, make_benchmark

    docs = [d for domain in ("forget", "retain") for d in load_demo("train", domain)[:60]]
    bench = make_benchmark(docs, BenchmarkConfig(seed=0, splice_fraction_forget=0.3))
    spliced = [b for b in bench["train"] if "passage" in b.document.meta]
    for host_domain, passage_forget in (("retain", True), ("forget", False)):
        b = next(b for b in spliced if b.document.domain == host_domain)
        doc, text = b.document, b.document.text
        lo, hi = doc.meta["passage"]["start"], doc.meta["passage"]["end"]
        offsets = word_offsets(text)
        p = np.linspace(0.0, 1.0, len(offsets)).astype(np.float32)  # a teacher that disagrees with provenance
        spans = teacher_relabel.host_spans(doc, b.spans, offsets, p)
        inside = [s for s in spans if s[0] >= lo and s[1] <= hi]
        outside = [s for s in spans if s[1] <= lo or s[0] >= hi]
        assert len(inside) + len(outside) == len(spans)  # nothing crosses an edge
        assert inside == ([(lo, hi, 1.0)] if passage_forget else [])
        expected = {(int(a), int(z)): round(float(np.round(v / 0.05) * 0.05), 2) for (a, z), v in zip(offsets, p)
                    if (z <= lo or a >= hi) and np.round(v / 0.05) * 0.05 >= 0.05}
        assert {(a, z): s for a, z, s in outside} == expected
        assert len({s for _, _, s in outside}) > 5  # soft, not the host's provenance
        (moves,) = teacher_relabel.sentence_moves([(doc, b.spans)], {doc.id: spans}).values()
        assert moves["sentences"] > 3
        if passage_forget:  # a keep host: its late sentences (teacher p > 0.5) become forget, none the other way
            assert moves["keep to forget"] > 0 and moves["forget to keep"] == 0
        else:
            assert moves["forget to keep"] > 0 and moves["keep to forget"] == 0


def test_steps_harness_relabels_every_label_part_document(scripts, small_bench, tmp_path):
    """classifier_steps.py --train-labels replaces the label part's spans and refuses a file that misses one."""
    import classifier_steps

    from tokfilter.labels.spans import write_labels

    train = [(b.document, b.spans) for b in small_bench["train"][:5]]
    data = {"train": train, "valid": [], "test": []}
    path = tmp_path / "labels.jsonl"
    write_labels(path, [(doc.id, [(0, 4, 0.35)]) for doc, _ in train])
    relabelled = classifier_steps.relabel(data, path)
    assert [(doc.id, spans) for doc, spans in relabelled["train"]] == [(doc.id, [(0, 4, 0.35)]) for doc, _ in train]
    write_labels(path, [(doc.id, []) for doc, _ in train[:-1]])
    with pytest.raises(SystemExit, match="no labels for 1 label-part documents"):
        classifier_steps.relabel(data, path)


def test_steps_harness_checks_set_before_reading_the_run(scripts, tmp_path, monkeypatch, capsys):
    """classifier_steps.py --set KEY=VALUE is checked against the classifier settings before the run is read."""
    import classifier_steps

    name = "recipe, sentence-min + natural x6 (both demos)"
    missing = str(tmp_path / "no-run")
    monkeypatch.setattr("sys.argv", ["classifier_steps.py", "--run", missing, "--steps", name, "--set", "bogus=1"])
    with pytest.raises(SystemExit) as exit_info:
        classifier_steps.main()
    assert exit_info.value.code == 2 and "unknown key 'bogus'" in capsys.readouterr().err
    monkeypatch.setattr("sys.argv", ["classifier_steps.py", "--run", missing, "--steps", name, "--set", "d_model=0"])
    with pytest.raises(SystemExit):
        classifier_steps.main()
    assert "d_model = 0" in capsys.readouterr().err
    monkeypatch.setattr("sys.argv", ["classifier_steps.py", "--run", missing, "--steps", name, "--set",
                                     "finetune_steps=10"])
    with pytest.raises(Exception, match="no-run"):  # a valid setting passes the check; then the missing run fails
        classifier_steps.main()


def test_relabel_feature_cache_is_reused_only_for_the_same_documents_and_labels(scripts, small_bench, tmp_path):
    """scripts/teacher_relabel.py reads SmolLM2 again when the documents or their labels differ from the cached ones,
    not otherwise, and leaves no temporary files."""
    import numpy as np
    import teacher_relabel

    class CountingReader:  # stands in for SmolLM2: 4 features per whitespace token
        def __init__(self):
            self.texts = 0

        def read(self, texts):
            self.texts += len(texts)
            return [(np.ones((len(o), 4), np.float32), o) for o in map(word_offsets, texts)]

    reader = CountingReader()
    items = [(b.document, b.spans) for b in small_bench["train"][:6]]
    x, meta = teacher_relabel.cached_features("label", items, tmp_path, lambda: reader)
    again, cached = teacher_relabel.cached_features("label", items, tmp_path, lambda: reader)
    assert reader.texts == 6 and np.array_equal(np.asarray(again), x) and np.array_equal(cached["y"], meta["y"])
    relabelled = [(doc, []) for doc, _ in items]
    _, changed = teacher_relabel.cached_features("label", relabelled, tmp_path, lambda: reader)
    assert reader.texts == 12 and changed["y"].max() == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["label.npy", "label.npz"]


def test_teacher_figures_include_the_share_of_keep_tokens_flagged(scripts):
    """build_teacher_labels.prf (the teacher's dev-set figures, --dev-only) reports the forget share and the share of
    keep tokens flagged, which `f1_at_share` needs to carry an F1 to another base rate."""
    import build_teacher_labels
    import numpy as np

    p = np.array([0.9, 0.8, 0.2, 0.6, 0.1, 0.05, 0.7, 0.0])
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0], dtype=np.float32)
    figures = build_teacher_labels.prf(p, y, 0.5)
    assert figures["forget_fraction"] == 0.375
    assert figures["keep_flagged"] == 0.4  # 2 of the 5 keep tokens at or above 0.5
    assert (figures["precision"], figures["recall"]) == (0.5, 0.6667)
