"""tokfilter: capability shaping by token-level pretraining-data filtering.

Label which tokens of a corpus belong to a *forget* domain, distill a cheap bidirectional token classifier, score the
corpus once, pretrain with document filtering, token loss-masking or token removal at any threshold, and measure what
was removed and what survived. See README.md and ../shared/PAPER.md for the method.
"""

__version__ = "0.1.0"
