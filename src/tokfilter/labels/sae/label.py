"""The SAE labeler: the k/z token rule, span growth, and the labeler that runs it over documents.

`label_rule`: a token is forget when it activates >= k selected latents at >= z standard deviations above each
latent's mean (k=2, z=4); labelled spans then grow to convergence over adjacent tokens with any positive selected
activation (`tokfilter.labels.grow.grow_spans`). `build_labeler` reads reference text, trains an SAE if none is
given, computes the statistics and selects latents; `label_documents` streams (doc id, char spans) for documents.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tokfilter.errors import UserError
from tokfilter.labels.grow import grow_spans
from tokfilter.labels.sae.model import SparseAutoencoder, encode_batched
from tokfilter.labels.sae.reader import ResidualReader, collect_activations
from tokfilter.labels.sae.select import ContrastiveSelector, Selector
from tokfilter.labels.sae.stats import LatentStats, reference_stats
from tokfilter.labels.sae.train import SAETrainOptions, train_sae
from tokfilter.labels.spans import token_scores_to_spans


def label_rule(latents: np.ndarray, mean: np.ndarray, std: np.ndarray, k: int = 2, z: float = 4.0,
               grow: bool = True) -> np.ndarray:
    """Forget flag per token from the selected latents' activations (n_tokens, n_selected).

    A token is forget if >= k selected latents are active (> 0) at >= mean + z * std (per latent, from reference
    text); then, if `grow`, spans grow to convergence over adjacent tokens with any positive selected activation.
    """
    latents = np.asarray(latents, dtype=np.float32)
    if latents.ndim != 2 or latents.shape[1] != len(mean) or len(mean) != len(std):
        raise ValueError(f"latents {latents.shape} do not match mean {np.shape(mean)} / std {np.shape(std)}")
    if latents.shape[1] == 0:
        return np.zeros(len(latents), dtype=bool)
    strong = (latents > 0) & (latents >= np.asarray(mean) + z * np.asarray(std))
    flags = strong.sum(axis=1) >= k
    if not grow:
        return flags
    return np.asarray(grow_spans(flags, (latents > 0).any(axis=1)), dtype=bool)


# ----------------------------------------------------------------------------------------------------------------
# The whole labeler


@dataclass
class SAELabeler:
    """A model reader, an SAE and the selected latents with their reference mean/std: labels documents."""

    reader: ResidualReader
    sae: SparseAutoencoder
    latents: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    k: int = 2
    z: float = 4.0

    def label_texts(self, texts: Sequence[str]) -> list[list[tuple[int, int, float]]]:
        """Char spans [(start, end, 1.0)] of the forget tokens of each text."""
        out = []
        for acts, offsets in self.reader.read(texts):
            if len(acts) == 0 or len(self.latents) == 0:
                out.append([])
                continue
            selected = encode_batched(self.sae, acts)[:, self.latents]
            flags = label_rule(selected, self.mean, self.std, self.k, self.z)
            out.append(token_scores_to_spans(flags.astype(np.float32), offsets, threshold=0.5))
        return out


def build_labeler(model, tokenizer, layer: int, forget_texts: Sequence[str], other_texts: Sequence[str],
                  sae: SparseAutoencoder | None = None, train: SAETrainOptions | None = None,
                  selector: Selector | None = None, k: int = 2, z: float = 4.0, max_tokens: int = 256,
                  batch_size: int = 8, top_examples: int = 0, log: Callable[[str], None] | None = None
                  ) -> tuple[SAELabeler, LatentStats, dict]:
    """Read reference text, train the SAE if none is given, compute statistics, select latents.

    Returns (labeler, stats, info) where info records sizes, selection and timings for the run summary.
    """
    if not forget_texts or not other_texts:
        raise UserError("the SAE labeler needs both forget and other (retain/general) reference documents")
    log = log or (lambda message: None)
    info: dict = {"layer": layer}
    t0 = time.perf_counter()
    reader = ResidualReader(model, tokenizer, layer, max_tokens=max_tokens, batch_size=batch_size)
    forget_acts = collect_activations(reader, forget_texts, desc="forget reference")
    other_acts = collect_activations(reader, other_texts, desc="other reference")
    info["reference_tokens"] = {"forget": int(sum(len(a) for a, _ in forget_acts)),
                                "other": int(sum(len(a) for a, _ in other_acts))}
    info["seconds_reference"] = round(time.perf_counter() - t0, 2)
    if sae is None:
        train = train or SAETrainOptions()
        t1 = time.perf_counter()
        pool = np.concatenate([a for a, _ in forget_acts + other_acts if len(a)])
        sae, train_info = train_sae(pool, d_sae=train.d_sae, architecture=train.architecture, k=train.k,
                                    l1_coeff=train.l1_coeff, steps=train.steps, batch_size=train.batch_size,
                                    lr=train.lr, seed=train.seed)
        info["sae_training"] = {**train_info, "seconds": round(time.perf_counter() - t1, 2)}
        log(f"trained a {train.architecture} SAE ({train.d_sae} latents) on {len(pool)} tokens: {train_info}")
    info["sae"] = {"architecture": sae.architecture, "d_in": sae.d_in, "d_sae": sae.d_sae}
    stats = reference_stats(sae, ((a, o, t) for (a, o), t in zip(forget_acts, forget_texts)),
                            ((a, o, t) for (a, o), t in zip(other_acts, other_texts)), top_examples=top_examples)
    selector = selector or ContrastiveSelector()
    latents = np.asarray(selector(stats), dtype=np.int64)
    mean, std = stats.mean()[latents], stats.std()[latents]
    info["selected_latents"] = int(len(latents))
    info["alive_latents"] = int(((stats.fires["forget"] + stats.fires["other"]) > 0).sum())
    if len(latents) < k:
        log(f"warning: only {len(latents)} latents selected, fewer than k={k}: no token can be labelled")
    labeler = SAELabeler(reader, sae, latents, mean.astype(np.float32), std.astype(np.float32), k, z)
    return labeler, stats, info


def label_documents(labeler: SAELabeler, documents: Iterable, batch_docs: int = 16
                    ) -> Iterator[tuple[str, list[tuple[int, int, float]]]]:
    """(doc id, spans) for each Document, streaming in batches of `batch_docs`."""
    batch: list = []
    for document in documents:
        batch.append(document)
        if len(batch) >= batch_docs:
            yield from zip((d.id for d in batch), labeler.label_texts([d.text for d in batch]))
            batch = []
    if batch:
        yield from zip((d.id for d in batch), labeler.label_texts([d.text for d in batch]))


def selection_record(labeler: SAELabeler, stats: LatentStats, selector: Selector, max_contexts: int = 3) -> dict:
    """JSON-able description of the selected latents (index, specificity, rates, mean, std, top contexts)."""
    spec = selector.specificity(stats) if hasattr(selector, "specificity") else None
    rows = []
    for i, latent in enumerate(labeler.latents.tolist()):
        row = {"latent": latent, "forget_rate": round(float(stats.rate("forget")[latent]), 6),
               "other_rate": round(float(stats.rate("other")[latent]), 6),
               "mean": float(labeler.mean[i]), "std": float(labeler.std[i])}  # exact float32 values
        if spec is not None:
            row["specificity"] = round(float(spec[latent]), 6)
        contexts = stats.contexts(latent)[:max_contexts]
        if contexts:
            row["top_contexts"] = [c for _, c in contexts]
        rows.append(row)
    return {"format": "tokfilter-sae-selection", "layer": labeler.reader.layer, "d_sae": labeler.sae.d_sae,
            "k": labeler.k, "z": labeler.z, "reference_tokens": dict(stats.n), "latents": rows}


def load_selection(path: str | Path, d_sae: int, layer: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(latents, mean, std) from a `--selection-out` file, checked against the SAE width and layer."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"--selection {path}: not found") from None
    except json.JSONDecodeError as err:
        raise UserError(f"--selection {path}: malformed JSON ({err.msg})") from None
    if not isinstance(record, dict) or record.get("format") != "tokfilter-sae-selection":
        raise UserError(f"--selection {path}: not a selection file written by --selection-out")
    if record.get("d_sae") != d_sae or record.get("layer") != layer:
        raise UserError(f"--selection {path}: made for layer {record.get('layer')} / {record.get('d_sae')} latents, "
                        f"not layer {layer} / {d_sae}")
    try:
        latents = np.array([row["latent"] for row in record["latents"]], dtype=np.int64)
        mean = np.array([row["mean"] for row in record["latents"]], dtype=np.float32)
        std = np.array([row["std"] for row in record["latents"]], dtype=np.float32)
    except (KeyError, TypeError, ValueError):
        raise UserError(f"--selection {path}: each latent needs 'latent', 'mean' and 'std'") from None
    if len(latents) and (latents.min() < 0 or latents.max() >= d_sae):
        raise UserError(f"--selection {path}: latent index out of range for {d_sae} latents")
    return latents, mean, std
