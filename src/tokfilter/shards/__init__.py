"""Token shards (a DESIGN.md contract): writer, memory-mapped reader and verifier."""

from tokfilter.shards.format import ShardSet, scores_file, shard_name
from tokfilter.shards.verify import verify
from tokfilter.shards.writer import write_shards

__all__ = ["ShardSet", "scores_file", "shard_name", "verify", "write_shards"]
