"""tokfilter view: a self-contained page, rendered in headless Chromium (screenshot + the DOM after the script ran)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tokfilter.cli import main
from tokfilter.shards import ShardSet
from tokfilter.testing import LOADER, build_shards, make_standin


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run-like directory with annotated shards (stand-in classifier) and exact `truth` labels."""
    from tokfilter.annotate import annotate
    from tokfilter.tokenizer import load_tokenizer
    from tokfilter.tokenizer.core import default_tokenizer_spec

    root = tmp_path_factory.mktemp("run")
    build_shards(root / "shards", n_docs=30)
    classifier = make_standin(root / "classifier", load_tokenizer(default_tokenizer_spec()))
    annotate(classifier, root / "shards", loader=LOADER, progress=False)
    return root


def test_view_page_is_self_contained(run_dir, capsys):
    assert main(["view", str(run_dir), "--docs", "12"]) == 0
    summary = json.loads(capsys.readouterr().out)
    page = (run_dir / "view.html").read_text()
    assert summary["documents_shown"] == 12 and summary["truth"] and summary["name"] == "forget"
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # no external resources
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S)[1])
    shards = ShardSet(run_dir / "shards")
    means = sorted((float(np.asarray(shards.scores(s, "forget")[a:e + 1], dtype=np.float64).mean()))
                   for s in range(shards.num_shards) for a, e in shards.documents(s))
    shown = sorted(d["mean"] for d in data["docs"])
    assert shown[0] == pytest.approx(means[0], abs=1e-3) and shown[-1] == pytest.approx(means[-1], abs=1e-3)
    tokenizer = shards.tokenizer()
    first = data["docs"][0]
    a, b = shards.documents(first["shard"])[0]
    assert "".join(first["pieces"]) == tokenizer.decode(shards.tokens(first["shard"])[a:b].tolist())


def test_view_renders_in_headless_chromium(run_dir, tmp_path, run_chromium):
    page = tmp_path / "page.html"
    assert main(["view", str(run_dir / "shards"), "--out", str(page), "--docs", "8"]) == 0
    shot = tmp_path / "shot.png"
    result = run_chromium(f"--screenshot={shot}", page.as_uri())
    assert shot.is_file(), result.stderr[-2000:]
    assert shot.stat().st_size > 20_000
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 1000)
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200  # text, shading of many scores, controls: not blank
    reds = sum(n for n, (r, g, bl) in colours if r > 200 and g < 190 and bl < 190)
    assert reds > 1000  # tokens shaded by score

    # the DOM after the script ran: the default view (mask at 0.5) strikes exactly the tokens scored >= 0.5
    dom = run_chromium("--dump-dom", page.as_uri()).stdout
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>',
                                page.read_text(), re.S)[1])
    expected = sum(int(s >= 500) for d in data["docs"] for s in d["s"])
    assert expected > 0 and len(re.findall(r'<span [^>]*class="m"', dom)) == expected
    assert "% of shown tokens hidden" in dom

    # remove mode at another threshold, set through the address: tokens >= 0.3 are blacked out, none struck
    dom = run_chromium("--dump-dom", page.as_uri() + "#mode=remove&t=0.3").stdout
    expected = sum(int(s >= 300) for d in data["docs"] for s in d["s"])
    assert len(re.findall(r'<span [^>]*class="r"', dom)) == expected
    assert not re.findall(r'<span [^>]*class="m"', dom)


def test_view_bad_input(run_dir, tmp_path, capsys):
    assert main(["view", str(tmp_path / "nowhere")]) == 2
    assert main(["view", str(run_dir), "--name", "nothere", "--out", str(tmp_path / "p.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("tokfilter: error:") for line in err)
    assert not (tmp_path / "p.html").exists()
