"""Token-classification metrics: precision / recall / F1 at a threshold, the F1-maximising threshold, AUROC, and
a precision-recall curve figure.

Gold labels are binarised at 0.5 (exact spans are 0/1; soft weak labels count as forget when >= 0.5). The threshold
is chosen on validation tokens (`best_threshold`) and then applied unchanged to test tokens, as the paper does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tokfilter.atomic import atomic_path


def best_threshold(scores: np.ndarray, gold: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) maximising F1 of `scores >= threshold` over all distinct score values (exact, O(n log n))."""
    scores = np.asarray(scores, dtype=np.float64)
    gold = np.asarray(gold) >= 0.5
    if len(scores) == 0 or not gold.any():
        return 0.5, 0.0
    order = np.argsort(-scores, kind="stable")
    s, g = scores[order], gold[order]
    tp = np.cumsum(g)
    fp = np.cumsum(~g)
    last = np.r_[s[1:] != s[:-1], True]  # threshold = s[i] keeps every token scoring >= s[i]
    tp, fp, s = tp[last], fp[last], s[last]
    f1 = 2 * tp / (tp + fp + g.sum())
    i = int(np.argmax(f1))
    return float(s[i]), float(f1[i])


def token_metrics(scores: np.ndarray, gold: np.ndarray, threshold: float) -> dict:
    """precision, recall, f1 at `threshold`, AUROC, counts, and `keep_flagged`: the share of keep tokens flagged
    (the false-positive rate, which with the forget fraction decides the precision on other text: f1_at_share)."""
    from sklearn.metrics import roc_auc_score

    scores = np.asarray(scores, dtype=np.float64)
    gold = np.asarray(gold) >= 0.5
    pred = scores >= threshold
    tp = int(np.sum(pred & gold))
    fp = int(np.sum(pred & ~gold))
    fn = int(np.sum(~pred & gold))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    auroc = float(roc_auc_score(gold, scores)) if 0 < gold.sum() < len(gold) else float("nan")
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "auroc": round(auroc, 4), "threshold": float(threshold), "tokens": int(len(gold)),
            "forget_fraction": round(float(gold.mean()) if len(gold) else 0.0, 4),
            "keep_flagged": round(fp / max(int(np.sum(~gold)), 1), 4)}


def f1_at_share(recall: float, keep_flagged: float, share: float) -> float:
    """The F1 a classifier with this recall and this share of keep tokens flagged would have on text whose forget
    fraction is `share`: precision falls with the base rate (a 6%-forget set halves it against a 15%-forget one)."""
    if not 0 < share < 1:
        raise ValueError(f"share must be in (0, 1), not {share}")
    true, false = share * recall, (1 - share) * keep_flagged
    precision = true / (true + false) if true + false else 0.0
    return round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0


def pr_curve_png(scores: np.ndarray, gold: np.ndarray, path: str | Path, title: str = "",
                 threshold: float | None = None) -> None:
    """Write a precision-recall curve (PNG) with the chosen operating point marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    gold = np.asarray(gold) >= 0.5
    precision, recall, _ = precision_recall_curve(gold, np.asarray(scores, dtype=np.float64))
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(recall, precision, lw=1.5)
    if threshold is not None:
        m = token_metrics(scores, gold, threshold)
        ax.plot([m["recall"]], [m["precision"]], "o", label=f"threshold {threshold:.3g}: F1 {m['f1']:.3f}")
        ax.legend(loc="lower left")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(title or "token classifier")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
