"""Token classifiers: the biLM (forward + reversed backward causal LM + head) and its baselines.

    from tokfilter.classify import load_classifier, train_classifier, train_classifiers, evaluate_classifier

`load_classifier(dir)` returns an object with `kind`, `tokenizer_hash`, `params`, `flops_per_token`, `threshold`,
`score_tokens(ids)` and `score_batch(docs)` (see `interface.py`); the annotate stage depends on exactly this.
Modules: `interface` (the protocol, the directory format and shared helpers), `registry` (kind -> class,
`load_classifier`), `data` (labels -> tokens, windows), `bilm`, `baselines` (windowed log-odds, document), `encoder`
(Hugging Face encoder), `metrics`, `train` (training / evaluation API), `cli` (`tokfilter classifier`).
"""

from tokfilter.classify.interface import TokenClassifier, check_tokenizer
from tokfilter.classify.registry import load_classifier
from tokfilter.classify.train import (
    BUDGETS,
    evaluate_classifier,
    results_block,
    train_classifier,
    train_classifiers,
)

__all__ = ["BUDGETS", "TokenClassifier", "check_tokenizer", "evaluate_classifier", "load_classifier",
           "results_block", "train_classifier", "train_classifiers"]
