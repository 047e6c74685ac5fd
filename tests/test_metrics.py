"""medshard.metrics against scikit-learn on random held-out arrays with CLIMB masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medshard import metrics

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def _random_split(seed: int, n: int = 300, v: int = 9):
    """Scores with ties, two sources with different label spaces, labels absent from the split."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, v)) < 0.3).astype(np.float32)
    score = np.round(rng.random((n, v)) * 0.6 + 0.4 * y, 2)  # rounding makes ties
    sources = np.where(rng.random(n) < 0.5, "a", "b")
    mask = np.zeros((n, v), dtype=np.float32)
    mask[sources == "a", :5] = 1
    mask[sources == "b", 3:] = 1
    y *= mask
    y[:, 1] = 0  # label 1: no positive anywhere
    y[sources == "b", 7] = 1  # label 7: no negative in source b
    return y, score, mask, sources


def _sklearn_label(y, s, threshold):
    tn, fp, fn, tp = sklearn_metrics.confusion_matrix(y, s >= threshold, labels=[0, 1]).ravel()
    return {
        "auc": sklearn_metrics.roc_auc_score(y, s),
        "sensitivity": tp / (tp + fn),
        "specificity": tn / (tn + fp),
        "balanced_accuracy": sklearn_metrics.balanced_accuracy_score(y, s >= threshold),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_masked_metrics_equal_scikit_learn_per_label_and_macro(seed):
    y, s, mask, sources = _random_split(seed)
    names = [f"c{j}" for j in range(y.shape[1])]
    for src in ("a", "b"):
        rows = sources == src
        got = metrics.masked_label_metrics(y[rows], s[rows], mask[rows], names, threshold=0.5)
        want_labels = {}
        for j in np.flatnonzero(mask[rows].any(axis=0)):
            yj, sj = y[rows][mask[rows][:, j] > 0, j], s[rows][mask[rows][:, j] > 0, j]
            if 0 < yj.sum() < len(yj):
                want_labels[names[j]] = _sklearn_label(yj, sj, 0.5)
        assert set(got["labels"]) == set(want_labels)
        for name, want in want_labels.items():
            for k, v in want.items():
                assert got["labels"][name][k] == pytest.approx(v, abs=1e-12), (src, name, k)
        for k in metrics.CLASSIFICATION_METRICS:
            macro = np.mean([w[k] for w in want_labels.values()])
            assert got[k] == pytest.approx(macro, abs=1e-12)
        assert got["labels_evaluated"] == len(want_labels)


def test_labels_absent_from_a_split_are_excluded_and_counted():
    y, s, mask, sources = _random_split(0)
    names = [f"c{j}" for j in range(y.shape[1])]
    b = sources == "b"
    got = metrics.masked_label_metrics(y[b], s[b], mask[b], names)
    # source b expresses c3..c8; c7 is always positive there; c1 is not in its label space
    assert got["labels_excluded"] == {"c7": "no negative sample"}
    assert got["labels_evaluated"] == 5
    a = sources == "a"
    got = metrics.masked_label_metrics(y[a], s[a], mask[a], names)
    assert got["labels_excluded"] == {"c1": "no positive sample"}
    assert "c5" not in got["labels"] and "c5" not in got["labels_excluded"]


def test_masked_out_entries_do_not_count():
    y, s, mask, _ = _random_split(3)
    noisy_y, noisy_s = y.copy(), s.copy()
    off = mask == 0
    noisy_y[off] = 1.0
    noisy_s[off] = 0.0
    a = metrics.masked_label_metrics(y, s, mask)
    b = metrics.masked_label_metrics(noisy_y, noisy_s, mask)
    assert a["auc"] == b["auc"] and a["sensitivity"] == b["sensitivity"]


def test_operating_points_match_the_roc_curve():
    rng = np.random.default_rng(5)
    y = (rng.random(400) < 0.4).astype(int)
    s = np.round(rng.random(400) * 0.7 + 0.3 * y, 2)
    fpr, tpr, thr = sklearn_metrics.roc_curve(y, s, drop_intermediate=False)
    j = tpr - fpr
    assert metrics.operating_threshold(y, s, "youden") == pytest.approx(thr[np.argmax(j)])
    first = np.flatnonzero(tpr >= 0.9)[0]
    assert metrics.operating_threshold(y, s, "sensitivity=0.9") == pytest.approx(thr[first])
    spec_ok = np.flatnonzero(1 - fpr >= 0.8)[-1]
    assert metrics.operating_threshold(y, s, "specificity=0.8") == pytest.approx(thr[spec_ok])
    t = metrics.operating_threshold(y, s, "youden")
    got = metrics.binary_figures(y, s, t)
    want = _sklearn_label(y, s, t)
    assert got["sensitivity"] == pytest.approx(want["sensitivity"])
    assert got["specificity"] == pytest.approx(want["specificity"])


def test_figures_at_chosen_thresholds_per_label():
    y, s, mask, _ = _random_split(4)
    thr = metrics.label_thresholds(y, s, mask, "youden")
    got = metrics.masked_label_metrics(y, s, mask, thresholds=thr)
    for name, fig in got["labels"].items():
        j = int(name)
        rows = mask[:, j] > 0
        want = _sklearn_label(y[rows, j], s[rows, j], thr[j])
        assert fig["sensitivity_op"] == pytest.approx(want["sensitivity"])
        assert fig["specificity_op"] == pytest.approx(want["specificity"])
    assert np.isnan(thr[1])  # no positives: no threshold to choose


def test_regression_mae_equals_scikit_learn_and_skips_missing_targets():
    rng = np.random.default_rng(6)
    t = rng.normal(55, 10, (50, 2))
    p = t + rng.normal(0, 3, (50, 2))
    t[::7, 1] = np.nan
    got = metrics.regression_metrics(t, p)
    ok = np.isfinite(t[:, 1])
    assert got["mae_per_target"][0] == pytest.approx(sklearn_metrics.mean_absolute_error(t[:, 0], p[:, 0]))
    assert got["mae_per_target"][1] == pytest.approx(
        sklearn_metrics.mean_absolute_error(t[ok, 1], p[ok, 1]))
    assert got["n_targets"] == [50, int(ok.sum())]


def test_report_by_source_task_and_modality_with_seeded_bootstrap():
    y, s, mask, sources = _random_split(7)
    tasks = np.where(np.arange(len(y)) % 3 == 0, "t1", "t2")
    kwargs = dict(tasks=tasks, modalities={"a": "ecg", "b": "ecg"}, n_boot=50, seed=3)
    report = metrics.evaluate(sources, torch.from_numpy(y), torch.from_numpy(s), mask, **kwargs)
    assert report == metrics.evaluate(sources, y, s, mask, **kwargs)  # tensors == arrays, seeded
    other = metrics.evaluate(sources, y, s, mask, **{**kwargs, "seed": 4})
    assert other["by_source"]["a"]["ci"] != report["by_source"]["a"]["ci"]
    for src in ("a", "b"):
        rows = sources == src
        direct = metrics.masked_label_metrics(y[rows], s[rows], mask[rows])
        assert report["by_source"][src]["auc"] == direct["auc"]
        lo, hi = report["by_source"][src]["ci"]["auc"]
        assert lo < direct["auc"] < hi
    assert set(report["by_task"]) == {"a:t1", "a:t2", "b:t1", "b:t2"}
    ecg = report["by_modality"]["ecg"]
    assert ecg["sources"] == ["a", "b"]
    assert ecg["auc"] == pytest.approx(
        (report["by_source"]["a"]["auc"] + report["by_source"]["b"]["auc"]) / 2)


def test_auc_is_nan_for_one_class_and_rejects_nan_scores():
    assert np.isnan(metrics.roc_auc([1, 1, 1], [0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="NaN"):
        metrics.roc_auc([0, 1], [0.1, float("nan")])


def test_metrics_import_needs_numpy_only():
    import subprocess
    import sys

    code = ("import sys, medshard.metrics; "
            "print(sorted(m for m in ('torch', 'sklearn', 'scipy', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
