"""The packaged broad-text LM weights the biLM starts from (classify/init.py, scripts/build_bilm_init.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tokfilter.classify import bilm as B
from tokfilter.classify.data import TokenDoc
from tokfilter.classify.init import load_init, packaged_init, read_init
from tokfilter.classify.settings import ClassifierSettings
from tokfilter.corpus.demo import load_demo
from tokfilter.errors import UserError


def _model(tokenizer, **changes) -> B.BiLM:
    s = ClassifierSettings()
    fields = {"vocab_size": tokenizer.vocab_size, "seq_len": s.seq_len, "n_layer": s.n_layer, "d_model": s.d_model,
              "n_head": s.n_head, "layers": list(s.layers), "head": s.head, "pad_id": tokenizer.eot_id} | changes
    torch.manual_seed(0)
    return B.BiLM(B.BiLMConfig(**fields))


def test_packaged_init_fits_the_packaged_tokenizer_and_the_default_biLM(tokenizer):
    meta = read_init("packaged")
    assert meta["tokenizer_hash"] == tokenizer.hash
    s = ClassifierSettings()
    assert meta["architecture"] == {"vocab_size": tokenizer.vocab_size, "seq_len": s.seq_len, "n_layer": s.n_layer,
                                    "d_model": s.d_model, "n_head": s.n_head}
    assert meta["tokens"] > 5_000_000 and {row["source"] for row in meta["sources"]} >= {"medquad_answers", "bbc_news"}


def test_loading_copies_both_directions(tokenizer):
    model = _model(tokenizer)
    load_init(model, "packaged", tokenizer.hash)
    tensors = load_file(str(packaged_init() / "lm.safetensors"))
    for prefix, module in (("fwd", model.fwd), ("bwd", model.bwd)):
        for name, value in module.state_dict().items():
            assert torch.equal(value, tensors[f"{prefix}.{name}"].to(torch.float32)), (prefix, name)


def test_the_init_is_a_language_model_of_demo_text_it_never_saw(tokenizer):
    """On the demo corpus's test documents (excluded from the init's text), the packaged LMs predict next and previous
    tokens far better than a random start: mean loss per direction at least 3 nats lower."""
    docs = [d for d in load_demo("test", "forget")[:20] + load_demo("test", "general")[:20]]
    rows = [TokenDoc(d.id, np.asarray(tokenizer.encode(d.text)[0][:128], dtype=np.int64), np.zeros(0, np.float32))
            for d in docs]
    random_start, packaged = _model(tokenizer), _model(tokenizer)
    load_init(packaged, "packaged", tokenizer.hash)
    losses = {}
    for name, model in (("random", random_start), ("packaged", packaged)):
        x, lengths, _ = B.to_batch(rows, model.config)
        with torch.no_grad():
            losses[name] = [float(v) for v in model.lm_losses(x, lengths)]
    for direction in (0, 1):
        assert losses["packaged"][direction] < losses["random"][direction] - 3.0, losses


def test_a_different_architecture_or_tokenizer_is_refused(tokenizer, tmp_path):
    with pytest.raises(UserError, match="d_model 96 \\(init\\) vs 64"):
        load_init(_model(tokenizer, d_model=64), "packaged", tokenizer.hash)
    with pytest.raises(UserError, match="tokenizer"):
        load_init(_model(tokenizer), "packaged", "another-hash")
    with pytest.raises(UserError, match="no lm.json"):
        load_init(_model(tokenizer), str(tmp_path), tokenizer.hash)
    (tmp_path / "lm.json").write_text("{not json")
    (tmp_path / "lm.safetensors").write_bytes(b"")
    with pytest.raises(UserError, match="lm.json: malformed JSON"):
        load_init(_model(tokenizer), str(tmp_path), tokenizer.hash)


def test_an_experiment_naming_a_missing_init_fails_before_any_stage(tmp_path):
    from tokfilter.pipeline.experiment import load_experiment

    path = tmp_path / "exp.toml"
    path.write_text('name = "x"\n[data]\ncorpus = ["demo"]\n[classifier.settings]\ninit = "nowhere"\n')
    with pytest.raises(UserError, match="classifier.settings: classifier init 'nowhere'"):
        load_experiment(path)
