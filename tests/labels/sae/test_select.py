"""The contrastive selector recovers latents planted to fire mostly on forget text."""

from __future__ import annotations

import numpy as np

from tokfilter.labels.sae.select import ContrastiveSelector


def test_contrastive_selector_recovers_planted_latents(planted_stats):
    rng = np.random.default_rng(0)
    planted = (3, 11, 27)
    stats = planted_stats(rng, planted=planted)
    selector = ContrastiveSelector()
    assert selector(stats).tolist() == list(planted)
    spec = selector.specificity(stats)
    assert spec[list(planted)].min() > 0.9 and np.median(spec) < 0.6
    assert ContrastiveSelector(max_latents=2)(stats).size == 2
    assert ContrastiveSelector(statistic="mean")(stats).tolist() == list(planted)
    assert np.allclose(stats.mean(), (stats.sums["forget"] + stats.sums["other"]) / stats.total)
