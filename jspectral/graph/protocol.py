"""Evaluation protocols on frozen embeddings (scikit-learn, as the official protocols use it).

* :func:`node_probe` -- node level. ``protocol="grace"`` is GRACE's ``eval.py``: L2-normalised
  embeddings, random 10 % train / 90 % test split, one-vs-rest liblinear logistic regression with a
  5-fold grid search over ``C = 2^-10 .. 2^9`` on the train part; micro-/macro-F1 over repeats.
  ``protocol="pygcl"`` follows PyGCL's ``get_split`` 10 / 10 / 80 split with model selection on the
  validation part (the official LREvaluator trains a torch linear layer with Adam and a weight-decay
  sweep; here the regularisation sweep is over ``C`` of a multinomial logistic regression).
* :func:`graph_svm` -- graph level, GraphCL ``evaluate_embedding.py``: 10-fold stratified CV; in
  each fold a 5-fold grid search of an RBF ``SVC`` over ``C in {1e-3, ..., 1e3}``; mean fold
  accuracy. Every split is seeded here (the official splits are not).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import normalize
from sklearn.svm import SVC

GRACE_C_GRID = tuple(2.0**k for k in range(-10, 10))
GRAPHCL_C_GRID = (1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3)


def _check(embeddings, labels):
  x, y = np.asarray(embeddings, np.float64), np.asarray(labels)
  if x.ndim != 2 or y.shape != (x.shape[0],):
    raise ValueError(f"embeddings, labels: expected (N, D) and (N,), got {x.shape} and {y.shape}")
  if not np.all(np.isfinite(x)):
    raise ValueError("embeddings: contain NaN or Inf")
  return x, y


def node_probe(embeddings, labels, *, protocol: str = "grace", seeds: Sequence[int] = (0, 1, 2),
               train_fraction: float = 0.1, val_fraction: float = 0.1,
               c_grid: Sequence[float] = GRACE_C_GRID, cv_folds: int = 5) -> dict[str, float]:
  """Linear probe accuracy on frozen node embeddings, mean and std over ``seeds``.

  ``protocol="grace"`` (GRACE ``eval.py``): L2-normalised embeddings, a random ``train_fraction``
  train / rest test split, one-vs-rest liblinear logistic regression with a ``cv_folds``-fold grid
  search over ``c_grid`` on the train part. ``protocol="pygcl"`` (PyGCL ``get_split``): a
  train / validation / test split, the ``C`` of a multinomial logistic regression chosen on the
  validation part. The CV folds shrink to the smallest class count (at least 2).

  Args:
    embeddings: frozen node embeddings ``(N, D)``, finite.
    labels: integer node labels ``(N,)``.
    protocol: ``"grace"`` or ``"pygcl"``.
    seeds: one split (and score) per seed.
    train_fraction: fraction of nodes in the train part (GRACE 0.1, PyGCL 0.1).
    val_fraction: fraction of nodes in the validation part (``"pygcl"`` only).
    c_grid: regularisation values searched (default ``2^-10 .. 2^9``).
    cv_folds: folds of the ``"grace"`` grid search.

  Returns:
    ``{"accuracy", "accuracy_std", "macro_f1", "macro_f1_std"}`` Python floats over the seeds
    (accuracy = micro-F1).

  Raises:
    ValueError: if ``protocol`` is unknown, the shapes are not ``(N, D)`` and ``(N,)``, or the
      embeddings contain NaN or Inf.
  """
  if protocol not in ("grace", "pygcl"):
    raise ValueError(f"protocol: expected 'grace' or 'pygcl', got {protocol!r}")
  x, y = _check(embeddings, labels)
  accs, macros = [], []
  for seed in seeds:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", (ConvergenceWarning, UserWarning, FutureWarning))
      if protocol == "grace":
        x_n = normalize(x, norm="l2")
        x_tr, x_te, y_tr, y_te = train_test_split(x_n, y, train_size=train_fraction,
                                                  random_state=seed)
        folds = max(2, min(cv_folds, int(np.bincount(y_tr).min(initial=cv_folds))))
        search = GridSearchCV(OneVsRestClassifier(LogisticRegression(solver="liblinear")),
                              {"estimator__C": list(c_grid)}, cv=folds, n_jobs=1)
        pred = search.fit(x_tr, y_tr).predict(x_te)
      else:
        perm = np.random.default_rng(seed).permutation(len(y))
        n_tr, n_va = int(train_fraction * len(y)), int(val_fraction * len(y))
        tr, va, te = perm[:n_tr], perm[n_tr:n_tr + n_va], perm[n_tr + n_va:]
        best = None
        for c in c_grid:
          clf = LogisticRegression(C=c, max_iter=2000).fit(x[tr], y[tr])
          score = np.mean(clf.predict(x[va]) == y[va])
          if best is None or score > best[0]:
            best = (score, clf)
        x_te, y_te, pred = x[te], y[te], best[1].predict(x[te])
    accs.append(np.mean(pred == y_te))
    macros.append(f1_score(y_te, pred, average="macro"))
  return {"accuracy": float(np.mean(accs)), "accuracy_std": float(np.std(accs)),
          "macro_f1": float(np.mean(macros)), "macro_f1_std": float(np.std(macros))}


def graph_svm(embeddings, labels, *, folds: int = 10, seed: int = 0,
              c_grid: Sequence[float] = GRAPHCL_C_GRID, cv_folds: int = 5) -> dict[str, float]:
  """GraphCL's SVM protocol (``evaluate_embedding.py``) on frozen graph embeddings.

  Stratified ``folds``-fold cross-validation; in each fold a ``cv_folds``-fold grid search of an RBF
  ``SVC`` over ``c_grid`` picks ``C``. Every split is seeded (the official splits are not).

  Args:
    embeddings: frozen graph embeddings ``(G, D)``, finite.
    labels: integer graph labels ``(G,)``.
    folds: outer cross-validation folds (official 10).
    seed: seed of the outer split.
    c_grid: ``C`` values searched (default ``1e-3 .. 1e3``).
    cv_folds: folds of the inner grid search (shrunk to the smallest class count, at least 2).

  Returns:
    ``{"accuracy", "accuracy_std"}`` Python floats over the outer folds.

  Raises:
    ValueError: if the shapes are not ``(G, D)`` and ``(G,)`` or the embeddings are not finite.
  """
  x, y = _check(embeddings, labels)
  accs = []
  outer = StratifiedKFold(folds, shuffle=True, random_state=seed)
  for train, test in outer.split(x, y):
    inner = max(2, min(cv_folds, int(np.bincount(y[train]).min())))
    search = GridSearchCV(SVC(), {"C": list(c_grid)}, cv=inner, n_jobs=1)
    accs.append(np.mean(search.fit(x[train], y[train]).predict(x[test]) == y[test]))
  return {"accuracy": float(np.mean(accs)), "accuracy_std": float(np.std(accs))}
