"""Score a corpus once: run a token classifier over token shards and store p(forget) per token beside them.

`annotate()` (pipeline.py) is the entry point; `score_shard()` (score.py) is the unit of work the executors
(executors.py: local processes, Ray) schedule; `export.py` turns scores into training data for other trainers.
"""

from tokfilter.annotate.pipeline import annotate
from tokfilter.annotate.score import score_shard

__all__ = ["annotate", "score_shard"]
