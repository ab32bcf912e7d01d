"""Rebuild src/tokfilter/labels/data/medical_contrastive_exclude.txt.gz, the lexicon labeler's learned stoplist.

    python scripts/build_lexicon_exclusions.py [--ratio 3.0]

The medical lexicons (HPO terms + drug names + hunspell medical words, minus GO terms) contain thousands of terms that
biology and everyday text use as much as medicine does ("membrane", "culture", "normal"). This script counts each
term's whole-word hits per word in the embedded demo corpus's *train* split, forget documents against retain +
general documents (document provenance only, never the benchmark's spans), and lists the terms whose forget rate is
below `ratio` times their non-forget rate (add-one smoothed). The list is sorted and gzipped with mtime 0, so the
same inputs give a byte-identical file. Needs ../shared/data/lexicons.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

from tokfilter.corpus import demo
from tokfilter.labels.lexicon import (
    CONTRASTIVE_RATIO,
    MEDICAL_BASE_EXCLUDE,
    MEDICAL_LEXICONS,
    build_matcher,
    contrastive_exclusions,
)

OUT = Path(__file__).resolve().parents[1] / "src" / "tokfilter" / "labels" / "data" / "medical_contrastive_exclude.txt.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratio", type=float, default=CONTRASTIVE_RATIO)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    matcher = build_matcher(MEDICAL_LEXICONS, MEDICAL_BASE_EXCLUDE)
    train = demo.load_demo(split="train")
    forget = [d.text for d in train if d.domain == "forget"]
    other = [d.text for d in train if d.domain != "forget"]
    excluded = contrastive_exclusions(matcher, forget, other, min_ratio=args.ratio)
    header = [f"# terms of {' + '.join(MEDICAL_LEXICONS)} - {' - '.join(MEDICAL_BASE_EXCLUDE)} whose hit rate in",
              f"# forget documents is < {args.ratio} x their rate in retain+general documents (demo train split:",
              f"# {len(forget)} forget, {len(other)} other documents). Rebuilt by scripts/build_lexicon_exclusions.py"]
    text = "\n".join(header + excluded) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as fh:
        fh.write(text.encode("utf-8"))
    print(f"{len(excluded)} of {matcher.size} terms excluded -> {args.out}")


if __name__ == "__main__":
    main()
