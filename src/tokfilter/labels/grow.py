"""Span growth: extend token labels over adjacent tokens that meet a weaker condition, to convergence.

The paper's SAE labeler marks a token when it fires >= 2 forget latents strongly, then repeatedly labels any token
adjacent to a labelled token that has *any* positive forget-latent activation, until nothing changes. The same
rule serves the lexicon labeler (grow a term hit over neighbouring medical-looking words).

Iterating "label the positive neighbours of labelled tokens" until a fixed point labels exactly: the seed tokens,
plus every maximal run of consecutive positive tokens that contains a seed or touches one. `grow_spans` computes that
fixed point directly with numpy (O(n), no Python loop over tokens); `grow_spans_iterative` is the literal loop, kept
as the reference the tests compare against. Both work on one document's tokens (never grow across documents).
"""

from __future__ import annotations

import numpy as np


def grow_spans(token_flags: np.ndarray, token_positive: np.ndarray) -> np.ndarray:
    """Seeds `token_flags` grown over adjacent `token_positive` tokens until convergence (bool array, same shape).

    token_flags: bool (n,), tokens labelled by the strict rule (seeds).
    token_positive: bool (n,), tokens allowed to join a neighbouring labelled span (e.g. any positive activation).
    """
    flags = np.asarray(token_flags, dtype=bool)
    positive = np.asarray(token_positive, dtype=bool)
    if flags.shape != positive.shape or flags.ndim != 1:
        raise ValueError(f"token_flags {flags.shape} and token_positive {positive.shape} must be equal 1-D shapes")
    n = len(flags)
    if n == 0 or not flags.any():
        return flags.copy()
    # a positive token is reachable if its run of positives contains a seed or touches one at either end
    near_seed = flags.copy()
    near_seed[1:] |= flags[:-1]
    near_seed[:-1] |= flags[1:]
    starts = positive & ~np.concatenate(([False], positive[:-1]))
    run_id = np.cumsum(starts) - 1  # run index for positive tokens (garbage elsewhere, masked below)
    hits = np.zeros(int(starts.sum()), dtype=bool)
    np.logical_or.at(hits, run_id[positive & near_seed], True)
    grown = flags.copy()
    grown[positive] |= hits[run_id[positive]]
    return grown


def grow_spans_iterative(token_flags: np.ndarray, token_positive: np.ndarray, max_steps: int | None = None
                         ) -> np.ndarray:
    """The literal rule: add positive neighbours of labelled tokens, repeat until nothing changes."""
    labelled = np.asarray(token_flags, dtype=bool).copy()
    positive = np.asarray(token_positive, dtype=bool)
    steps = 0
    while max_steps is None or steps < max_steps:
        neighbour = np.zeros_like(labelled)
        neighbour[1:] |= labelled[:-1]
        neighbour[:-1] |= labelled[1:]
        new = labelled | (neighbour & positive)
        steps += 1
        if (new == labelled).all():
            break
        labelled = new
    return labelled
