"""Token classifiers: the biLM (forward + reversed backward causal LM + head) and its baselines.

    from tokfilter.classify import load_classifier, train_classifier, train_classifiers, evaluate_classifier

`load_classifier(dir)` returns an object with `kind`, `tokenizer_hash`, `params`, `flops_per_token`, `threshold`,
`score_tokens(ids)` and `score_batch(docs)` (see `interface.py`); the annotate stage depends on exactly this.
Modules: `interface` (the protocol, the directory format and shared helpers), `registry` (kind -> class,
`load_classifier`), `data` (labels -> tokens, windows), `segments` (sentences from token ids), `bilm`, `baselines`
(windowed log-odds, document), `encoder` (Hugging Face encoder), `metrics`, `train` (training / evaluation API),
`cli` (`tokfilter classifier`).
"""

from tokfilter.classify.settings import BUDGETS, ClassifierSettings

# The rest load torch: imported on first use, so `import tokfilter.classify.settings` (read by the experiment
# loader and `tokfilter run --plan`) stays light.
_LAZY = {"TokenClassifier": "interface", "check_tokenizer": "interface", "load_classifier": "registry",
         "evaluate_classifier": "train", "results_block": "train", "train_classifier": "train",
         "train_classifiers": "train"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"tokfilter.classify.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'tokfilter.classify' has no attribute {name!r}")


__all__ = ["BUDGETS", "ClassifierSettings", *_LAZY]
