"""Classifier kinds -> classes, and `load_classifier(directory)`: the one place that knows every concrete classifier.

    clf = load_classifier("out/classifier")   # any kind written by `interface.save_classifier`

Each class in `CLASSIFIERS` implements the `interface.TokenClassifier` protocol and rebuilds itself from a saved
directory with `from_saved(directory, config, tensors)`. The concrete modules import only `interface` (and the
modules they build on), never this one.
"""

from __future__ import annotations

from pathlib import Path

from tokfilter.classify.baselines import DocumentClassifier, WindowedLogOdds
from tokfilter.classify.bilm import BiLMClassifier
from tokfilter.classify.encoder import EncoderClassifier
from tokfilter.classify.interface import KINDS, TokenClassifier, load_tensors, read_classifier_config
from tokfilter.errors import UserError

# kind (config.json "kind") -> class; "forward" is the biLM with the forward LM only
CLASSIFIERS: dict[str, type] = {
    "bilm": BiLMClassifier,
    "forward": BiLMClassifier,
    "windowed": WindowedLogOdds,
    "encoder": EncoderClassifier,
    "document": DocumentClassifier,
}
assert set(CLASSIFIERS) == set(KINDS)


def load_classifier(directory: str | Path) -> TokenClassifier:
    """Load any classifier directory written by `save_classifier` (see `classify.train` for the kinds)."""
    config = read_classifier_config(directory)
    tensors = load_tensors(directory)
    try:
        clf = CLASSIFIERS[config["kind"]].from_saved(directory, config, tensors)
    except (RuntimeError, KeyError, ValueError, ZeroDivisionError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else err.__class__.__name__
        raise UserError(f"{directory}: config.json does not describe model.safetensors ({first[:200]})") from None
    clf.threshold = float(config.get("threshold", 0.5))
    clf.directory = str(directory)
    return clf
