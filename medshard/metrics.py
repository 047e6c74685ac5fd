"""CLIMB's evaluation: masked multi-label AUC, sensitivity, specificity, MAE, bootstrap CIs.

Pure NumPy (accepts torch tensors too); no scikit-learn at run time.

Masking: each sample counts only for the concepts its source can express (the loader's
`label_mask`). For one label, the samples with mask 1 form that label's evaluation set;
a label is *evaluated* in a group when that set has both a positive and a negative, and
*excluded* (named, with the reason) otherwise. Macro figures average over evaluated labels.

Groups: per source, per (source, task), and per modality as CLIMB's tables do it (the
unweighted mean of the source-level figures of that modality's sources).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

CLASSIFICATION_METRICS = ("auc", "sensitivity", "specificity", "balanced_accuracy")


def as_array(x: Any, dtype: Any = np.float64) -> np.ndarray:
    """A NumPy array from a NumPy array, list or torch tensor (detached, on CPU)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of `values`, ties sharing the mean of their ranks."""
    n = len(values)
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    new_group = np.r_[True, ordered[1:] != ordered[:-1]]
    starts = np.flatnonzero(new_group)
    ends = np.r_[starts[1:], n]
    mean_rank = (starts + 1 + ends) / 2.0
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = mean_rank[np.cumsum(new_group) - 1]
    return ranks


def roc_auc(y_true: Any, y_score: Any) -> float:
    """Area under the ROC curve of one binary label (ties count one half); NaN unless
    both classes are present."""
    y = as_array(y_true) > 0.5
    s = as_array(y_score)
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinity")
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = average_ranks(s)[y].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def confusion_counts(y_true: Any, y_score: Any, threshold: float) -> tuple[int, int, int, int]:
    """(tp, fp, tn, fn) when a score >= threshold is called positive."""
    y = as_array(y_true) > 0.5
    pred = as_array(y_score) >= threshold
    tp = int(np.sum(pred & y))
    fp = int(np.sum(pred & ~y))
    fn = int(np.sum(~pred & y))
    return tp, fp, len(y) - tp - fp - fn, fn


def _ratio(a: int, b: int) -> float:
    return a / b if b else float("nan")


def binary_figures(y_true: Any, y_score: Any, threshold: float) -> dict[str, float]:
    """Sensitivity, specificity and balanced accuracy at `threshold` (NaN where undefined)."""
    tp, fp, tn, fn = confusion_counts(y_true, y_score, threshold)
    sens, spec = _ratio(tp, tp + fn), _ratio(tn, tn + fp)
    return {"sensitivity": sens, "specificity": spec, "balanced_accuracy": (sens + spec) / 2}


def operating_threshold(y_true: Any, y_score: Any, rule: str | float = "youden") -> float:
    """A decision threshold for one label, chosen on (validation) data.

    `rule`: a number (that threshold), "youden" (maximizes sensitivity + specificity;
    the highest such threshold), or "sensitivity=0.9" / "specificity=0.9" (the highest
    / lowest threshold reaching that figure). NaN when the data have a single class.
    """
    if isinstance(rule, (int, float)):
        return float(rule)
    y = as_array(y_true) > 0.5
    s = as_array(y_score)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    cuts = np.unique(s)[::-1]  # candidate thresholds, high to low
    pos_sorted = np.sort(s[y])
    neg_sorted = np.sort(s[~y])
    tpr = (n_pos - np.searchsorted(pos_sorted, cuts, side="left")) / n_pos
    tnr = np.searchsorted(neg_sorted, cuts, side="left") / n_neg
    if rule == "youden":
        return float(cuts[int(np.argmax(tpr + tnr))])
    name, _, value = str(rule).partition("=")
    try:
        target = float(value)
    except ValueError:
        raise ValueError(f"operating point {rule!r}: use a number, 'youden', "
                         "'sensitivity=0.9' or 'specificity=0.9'") from None
    if name == "sensitivity":
        return float(cuts[int(np.flatnonzero(tpr >= target)[0])])
    if name == "specificity":
        ok = np.flatnonzero(tnr >= target)
        return float(cuts[int(ok[-1])]) if len(ok) else float("inf")
    raise ValueError(f"operating point {rule!r}: use 'sensitivity=X' or 'specificity=X'")


def _label_columns(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask.any(axis=0))


def label_thresholds(
    y_true: Any, y_score: Any, mask: Any, rule: str | float = "youden"
) -> np.ndarray:
    """Per-label thresholds (length V) chosen by `rule` on the masked samples; NaN where a
    label cannot be chosen for (not expressible, or one class only)."""
    y, s, m = as_array(y_true), as_array(y_score), as_array(mask) > 0.5
    out = np.full(y.shape[1], np.nan)
    for j in _label_columns(m):
        rows = m[:, j]
        out[j] = operating_threshold(y[rows, j], s[rows, j], rule)
    return out


def masked_label_metrics(
    y_true: Any,
    y_score: Any,
    mask: Any,
    concept_ids: Sequence[str] | None = None,
    threshold: float = 0.5,
    thresholds: Any = None,
) -> dict[str, Any]:
    """Macro AUC / sensitivity / specificity / balanced accuracy over the evaluated labels.

    Returns the macro figures, `labels` (per evaluated label: n_pos, n_neg and its
    figures), `labels_evaluated` (count), `labels_excluded` ({label: reason}), and, when
    per-label `thresholds` are given, the same figures at those thresholds with the
    suffix `_op` (labels whose threshold is NaN are left out of those).
    """
    y, s, m = as_array(y_true), as_array(y_score), as_array(mask) > 0.5
    names = list(concept_ids) if concept_ids is not None else [str(j) for j in range(y.shape[1])]
    op = as_array(thresholds) if thresholds is not None else None
    per_label: dict[str, dict[str, float]] = {}
    excluded: dict[str, str] = {}
    for j in _label_columns(m):
        rows = m[:, j]
        yj, sj = y[rows, j], s[rows, j]
        n_pos = int((yj > 0.5).sum())
        n_neg = len(yj) - n_pos
        if n_pos == 0 or n_neg == 0:
            excluded[names[j]] = "no positive sample" if n_pos == 0 else "no negative sample"
            continue
        figures: dict[str, float] = {"n_pos": n_pos, "n_neg": n_neg, "auc": roc_auc(yj, sj)}
        figures.update(binary_figures(yj, sj, threshold))
        if op is not None and np.isfinite(op[j]):
            figures["threshold_op"] = float(op[j])
            for k, v in binary_figures(yj, sj, float(op[j])).items():
                figures[f"{k}_op"] = v
        per_label[names[j]] = figures
    out: dict[str, Any] = {
        k: _mean([f[k] for f in per_label.values()]) for k in CLASSIFICATION_METRICS
    }
    if op is not None:
        for k in CLASSIFICATION_METRICS[1:]:
            out[f"{k}_op"] = _mean([f[f"{k}_op"] for f in per_label.values() if f"{k}_op" in f])
    out.update(
        n_samples=int(m.any(axis=1).sum()),
        labels_evaluated=len(per_label),
        labels_excluded=excluded,
        labels=per_label,
    )
    return out


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, Any]:
    """MAE (and RMSE) per target column over the finite targets; NaN marks "no target"."""
    t, p = as_array(y_true), as_array(y_pred)
    if t.ndim == 1:
        t, p = t[:, None], p[:, None]
    maes, rmses, counts = [], [], []
    for j in range(t.shape[1]):
        ok = np.isfinite(t[:, j])
        err = p[ok, j] - t[ok, j]
        counts.append(int(ok.sum()))
        maes.append(float(np.abs(err).mean()) if ok.any() else float("nan"))
        rmses.append(float(np.sqrt((err**2).mean())) if ok.any() else float("nan"))
    return {"mae": _mean(maes), "rmse": _mean(rmses), "n_targets": counts, "mae_per_target": maes}


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def bootstrap_ci(
    rows: np.ndarray,
    statistic: Any,
    n_boot: int,
    seed: int,
    confidence: float = 0.95,
) -> dict[str, list[float]]:
    """Percentile confidence intervals of each figure `statistic(rows)` returns, over
    `n_boot` resamples of `rows` with replacement (NumPy generator seeded by `seed`)."""
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(n_boot):
        sample = rows[rng.integers(0, len(rows), len(rows))]
        for k, v in statistic(sample).items():
            draws.setdefault(k, []).append(v)
    lo, hi = (1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100
    out = {}
    for k, vs in draws.items():
        finite = np.asarray([v for v in vs if np.isfinite(v)])
        out[k] = [float(np.percentile(finite, lo)), float(np.percentile(finite, hi))] if len(
            finite
        ) else [float("nan"), float("nan")]
    return out


def evaluate(
    sources: Sequence[str],
    y_true: Any,
    y_score: Any,
    mask: Any,
    *,
    tasks: Sequence[str] | None = None,
    modalities: Mapping[str, str] | None = None,
    concept_ids: Sequence[str] | None = None,
    threshold: float = 0.5,
    thresholds: Any = None,
    reg_true: Any = None,
    reg_pred: Any = None,
    n_boot: int = 0,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """The full report: `by_source`, `by_task` ("source:task") and `by_modality`.

    `sources` (and `tasks`) name each sample's group; `modalities` maps source ->
    modality. `reg_true` / `reg_pred` (N or N x R, NaN where a sample has no target) add
    MAE. With `n_boot` > 0, each group gets `ci` ({figure: [low, high]}) from `n_boot`
    seeded resamples of its samples; a modality's CI averages its sources' bounds.
    """
    src = np.asarray(list(sources), dtype=object)
    y, s, m = as_array(y_true), as_array(y_score), as_array(mask)
    rt = as_array(reg_true) if reg_true is not None else None
    rp = as_array(reg_pred) if reg_pred is not None else None

    def group_report(rows: np.ndarray, salt: str) -> dict[str, Any]:
        def stat(r: np.ndarray) -> dict[str, float]:
            out = masked_label_metrics(y[r], s[r], m[r], concept_ids, threshold, thresholds)
            figures = {k: v for k, v in out.items() if isinstance(v, float)}
            if rt is not None and rp is not None:
                figures["mae"] = regression_metrics(rt[r], rp[r])["mae"]
            return figures

        report = masked_label_metrics(y[rows], s[rows], m[rows], concept_ids, threshold, thresholds)
        report["n_samples"] = len(rows)
        if rt is not None and rp is not None:
            report.update(regression_metrics(rt[rows], rp[rows]))
        if n_boot > 0:
            report["ci"] = bootstrap_ci(rows, stat, n_boot, _group_seed(seed, salt), confidence)
        return report

    by_source = {
        name: group_report(np.flatnonzero(src == name), name) for name in sorted(set(src))
    }
    by_task: dict[str, Any] = {}
    if tasks is not None:
        tk = np.asarray(list(tasks), dtype=object)
        for name in sorted(set(src)):
            for task in sorted(set(tk[src == name])):
                key = f"{name}:{task}"
                by_task[key] = group_report(np.flatnonzero((src == name) & (tk == task)), key)
    return {
        "by_source": by_source,
        "by_task": by_task,
        "by_modality": aggregate_by_modality(by_source, modalities or {}),
        "threshold": threshold,
    }


def aggregate_by_modality(
    by_source: Mapping[str, Mapping[str, Any]], modalities: Mapping[str, str]
) -> dict[str, Any]:
    """Per modality, the unweighted mean of its sources' figures (CLIMB's tables)."""
    groups: dict[str, list[str]] = {}
    for name in by_source:
        groups.setdefault(modalities.get(name, "unknown"), []).append(name)
    out: dict[str, Any] = {}
    for modality, names in sorted(groups.items()):
        reports = [by_source[n] for n in names]
        keys = [k for k in (*CLASSIFICATION_METRICS, "sensitivity_op", "specificity_op",
                            "balanced_accuracy_op", "mae") if any(k in r for r in reports)]
        agg: dict[str, Any] = {k: _mean([r.get(k, float("nan")) for r in reports]) for k in keys}
        cis = [r["ci"] for r in reports if "ci" in r]
        if cis:
            agg["ci"] = {
                k: [_mean([c[k][0] for c in cis if k in c]), _mean([c[k][1] for c in cis if k in c])]
                for k in keys
                if any(k in c for c in cis)
            }
        agg["sources"] = names
        out[modality] = agg
    return out


def _group_seed(seed: int, salt: str) -> int:
    """A per-group seed that does not depend on Python's hash randomization."""
    return (seed * 1_000_003 + zlib.crc32(salt.encode())) % (2**32)
