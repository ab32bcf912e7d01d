"""RMU: only the MLPs of blocks l-2..l move, forget loss rises far more than retain loss, the attack undoes it,
the sweep is recorded, and bad input is a one-line exit 2."""

from __future__ import annotations

import json

import pytest
import torch

from tokfilter.cli import main
from tokfilter.errors import UserError
from tokfilter.posthoc.attack import baseline_loss_of, finetune_attack
from tokfilter.posthoc.rmu import control_vector, rmu_unlearn, updated_params
from tokfilter.tokenizer import train_tokenizer
from tokfilter.train.checkpoint import load_model

from .robust_models import demo_texts, single_thread, train_tiny


def test_control_vector_is_seeded_unit_and_positive():
    u = control_vector(32, seed=1)
    assert torch.allclose(u.norm(), torch.tensor(1.0)) and (u >= 0).all()
    assert torch.equal(u, control_vector(32, seed=1)) and not torch.equal(u, control_vector(32, seed=2))


@pytest.fixture(scope="module")
def rmu_run(robust_models, tmp_path_factory):
    out = tmp_path_factory.mktemp("rmu") / "model"
    with single_thread():
        report = rmu_unlearn(robust_models["full"], demo_texts("forget", "train", 120),
                             demo_texts("retain", "train", 120), out, layer=2, coeffs=(4.0,), alphas=(1.0, 100.0),
                             steps=40, lr=1e-2, forget_eval_docs=demo_texts("forget", "valid", 12),
                             retain_eval_docs=demo_texts("retain", "valid", 12), eval_max_tokens=2048,
                             progress=False)
    return report, out


def test_rmu_optimises_its_objective_and_moves_only_mlps(rmu_run, robust_models):
    # The sharp forget-loss rise needs a model that has learned something (measured on the 4-layer demo models and
    # reported in docs); this 80-step test model checks the mechanics: the objective goes down, alpha trades
    # forget-steering against retain drift, the choice is recorded, and only the MLPs of blocks l-2..l move.
    report, out = rmu_run
    weak, strong = sorted(report["sweep"], key=lambda e: e["alpha"])
    for entry in (weak, strong):
        assert entry["final"]["forget_mse"] < entry["first"]["forget_mse"]
    assert strong["final"]["retain_mse"] < weak["final"]["retain_mse"]
    assert weak["forget_increase"] > 0 and abs(strong["retain_increase"]) < abs(weak["retain_increase"])
    assert report["updated_blocks"] == [0, 1, 2] and report["activation_norm"] > 0
    assert report["chosen"]["steering_coeff"] == pytest.approx(4.0 * report["activation_norm"])
    assert json.loads((out / "provenance.json").read_text())["chosen"] == report["chosen"]
    base, _ = load_model(robust_models["full"])
    new, _ = load_model(out)
    moved = {name for name, p in new.named_parameters()
             if not torch.equal(p, dict(base.named_parameters())[name])}
    allowed = {f"blocks.{i}.mlp.{w}.weight" for i in (0, 1, 2) for w in ("up", "down")}
    assert moved and moved <= allowed
    assert {id(p) for p in updated_params(new, 1)} == {id(p) for p in (*new.blocks[0].mlp.parameters(),
                                                                        *new.blocks[1].mlp.parameters())}


def test_attack_recovers_rmu_model(rmu_run):
    report, out = rmu_run
    result = finetune_attack(out, demo_texts("forget", "train", 400)[200:], demo_texts("forget", "valid", 12),
                             report["before"]["forget"], lrs=(3e-3,), max_tokens=30_000, eval_max_tokens=2048,
                             progress=False)
    assert result["reached"], result["curve"]
    assert result["recovery_fraction"] is not None  # provenance.json carries the base model's pretraining tokens


def test_bad_layer_and_empty_forget_data(robust_models, tmp_path, capsys):
    with pytest.raises(UserError, match="out of range"):
        rmu_unlearn(robust_models["full"], ["a b c"] * 4, ["d e f"] * 4, tmp_path / "x", layer=3, steps=1)
    with pytest.raises(UserError, match="no text"):
        rmu_unlearn(robust_models["full"], [], ["d e f"], tmp_path / "x", steps=1)
    rc = main(["unlearn", "rmu", "--model", str(robust_models["full"]), "--forget", "demo:forget:valid",
               "--retain", "demo:retain:valid", "--out", str(tmp_path / "y"), "--layer", "7"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "layer 7 is out of range" in err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    rc = main(["unlearn", "rmu", "--model", str(robust_models["full"]), "--forget", str(empty),
               "--retain", "demo:retain:valid", "--out", str(tmp_path / "y")])
    assert rc == 2 and "no text" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


@pytest.mark.slow
def test_acceptance_rmu_unlearns_and_recovers_faster_than_filtering(tmp_path):
    """Demo-scale acceptance (minutes): 4-layer models trained on demo text with and without the forget domain.
    RMU raises the full model's forget loss more than its retain loss, and the finetuning attack brings the RMU model
    back to the full model's loss in fewer tokens than the model that never saw forget text."""
    forget, retain, general = (demo_texts(d, "train", 600) for d in ("forget", "retain", "general"))
    with single_thread():
        tok = train_tokenizer(forget + retain + general, 1024, tmp_path / "tokenizer.json")
        dims = {"n_layer": 4, "d_model": 64, "seq_len": 128, "batch_size": 16, "lr": 6e-3}
        full = train_tiny(tok, forget + retain + general, tmp_path / "full", 500, **dims)
        filtered = train_tiny(tok, retain + general, tmp_path / "filtered", 500, **dims)
        held_f, held_r = demo_texts("forget", "valid", 40), demo_texts("retain", "valid", 40)
        report = rmu_unlearn(full, forget, retain, tmp_path / "rmu", layer=2, coeffs=(2.0,), alphas=(10.0,),
                             steps=200, lr=3e-3, forget_eval_docs=held_f, retain_eval_docs=held_r,
                             eval_max_tokens=8192, progress=False)
        rise_f = report["after"]["forget"] - report["before"]["forget"]
        rise_r = report["after"]["retain"] - report["before"]["retain"]
        assert rise_f > 0.3 and rise_f > 1.3 * rise_r, report["sweep"]
        target = baseline_loss_of(full, held_f, 8192)
        attacks = {name: finetune_attack(path, forget, held_f, target, lrs=(1e-3,), max_tokens=300_000,
                                         eval_max_tokens=8192, progress=False)
                   for name, path in (("rmu", tmp_path / "rmu"), ("filtered", filtered))}
    assert attacks["rmu"]["curve"][0][1] > target + 0.3 and attacks["rmu"]["reached"]
    assert attacks["filtered"]["curve"][0][1] > target
    filtered_tokens = attacks["filtered"]["recovery_tokens"] or 300_000
    assert attacks["rmu"]["recovery_tokens"] < filtered_tokens


def test_unlearn_with_attack_never_selects_on_the_attack_texts(tmp_path, monkeypatch, capsys):
    """`unlearn rmu --attack`: RMU's setting is chosen on its own held-out --forget/--retain documents, and the
    --forget-eval texts are only what the attack measures."""
    import json

    import tokfilter.posthoc.attack as attack
    import tokfilter.posthoc.rmu as rmu
    from tokfilter.cli import main

    seen = {}

    def fake_rmu(model_dir, forget, retain, out_dir, **kwargs):
        seen["rmu"] = kwargs
        return {"before": {"forget": 5.0, "retain": 4.0}, "after": {"forget": 5.5, "retain": 4.05}}

    def fake_attack(model_dir, train_texts, eval_texts, baseline, *args, **kwargs):
        seen["attack_eval"] = eval_texts
        return {"recovery_tokens": 0}

    monkeypatch.setattr(rmu, "rmu_unlearn", fake_rmu)
    monkeypatch.setattr(attack, "finetune_attack", fake_attack)
    argv = ["unlearn", "rmu", "--model", str(tmp_path), "--forget", "demo:forget:train", "--retain",
            "demo:retain:train", "--forget-eval", "demo:forget:valid", "--out", str(tmp_path / "rmu"), "--attack"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert seen["rmu"]["forget_eval_docs"] is None and seen["rmu"]["retain_eval_docs"] is None
    assert seen["attack_eval"], "the attack measures the --forget-eval texts"
    assert "disjoint" in report["selection"]
    # without --attack, --forget-eval is RMU's selection and before/after text
    main(argv[:-1])
    assert seen["rmu"]["forget_eval_docs"]
