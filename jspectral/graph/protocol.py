"""Evaluation protocols on frozen embeddings (scikit-learn, as the official protocols use it).

* :func:`node_probe` -- node level. ``protocol="pygcl"`` (the default) is PyGCL's
  ``LREvaluator`` on its ``get_split`` (:func:`lr_evaluator`): a linear layer trained full-batch
  with Adam and torch's coupled L2 weight decay for 5000 epochs, scored every 20, the test score
  taken at the best validation accuracy, over a weight-decay sweep (GCL-SPAN's
  ``unsupervised_node.py``) selected on validation accuracy. ``protocol="grace"`` is GRACE's
  ``eval.py`` with scikit-learn: L2-normalised embeddings, random 10 % train / 90 % test split,
  one-vs-rest liblinear logistic regression with a 5-fold grid search over ``C = 2^-10 .. 2^9``
  on the train part; micro-/macro-F1 over repeats.
* :func:`graph_svm` -- graph level, GraphCL ``evaluate_embedding.py``: 10-fold stratified CV; in
  each fold a 5-fold grid search of an RBF ``SVC`` over ``C in {1e-3, ..., 1e3}``; mean fold
  accuracy. Every split is seeded here (the official splits are not).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import normalize
from sklearn.svm import SVC

from jspectral.train.optim import coupled_l2_adam

GRACE_C_GRID = tuple(2.0**k for k in range(-10, 10))
GRAPHCL_C_GRID = (1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3)


def _check(embeddings, labels):
  x, y = np.asarray(embeddings, np.float64), np.asarray(labels)
  if x.ndim != 2 or y.shape != (x.shape[0],):
    raise ValueError(f"embeddings, labels: expected (N, D) and (N,), got {x.shape} and {y.shape}")
  if not np.all(np.isfinite(x)):
    raise ValueError("embeddings: contain NaN or Inf")
  return x, y


def node_probe(embeddings, labels, *, protocol: str = "pygcl", seeds: Sequence[int] = (0, 1, 2),
               train_fraction: float = 0.1, val_fraction: float = 0.8,
               c_grid: Sequence[float] = GRACE_C_GRID, cv_folds: int = 5,
               weight_decays: Sequence[float] = (0.0,), epochs: int = 5000,
               learning_rate: float = 0.01, test_interval: int = 20) -> dict[str, float]:
  """Linear probe accuracy on frozen node embeddings, mean and std over ``seeds``.

  ``protocol="pygcl"`` (PyGCL ``get_split`` + ``LREvaluator``, :func:`lr_evaluator`): a seeded
  permutation puts the first ``train_fraction`` of the nodes in train, the next ``val_fraction``
  in validation and the rest in test. The official ``get_split(train_ratio=0.1,
  test_ratio=0.8)`` slices its ``valid`` part with ``test_ratio``, so validation holds 80 % and
  test the remaining 10 % (reproduced: ``val_fraction=0.8``). ``protocol="grace"`` (GRACE
  ``eval.py``, scikit-learn): L2-normalised embeddings, a random ``train_fraction`` train / rest
  test split, one-vs-rest liblinear logistic regression with a ``cv_folds``-fold grid search over
  ``c_grid`` on the train part (folds shrink to the smallest class count, at least 2).

  Args:
    embeddings: frozen node embeddings ``(N, D)``, finite.
    labels: integer node labels ``(N,)``.
    protocol: ``"pygcl"`` or ``"grace"``.
    seeds: one split (and score) per seed.
    train_fraction: fraction of nodes in the train part (GRACE and PyGCL 0.1).
    val_fraction: fraction of nodes in the validation part (``"pygcl"`` only).
    c_grid: regularisation values searched (``"grace"``; default ``2^-10 .. 2^9``).
    cv_folds: folds of the ``"grace"`` grid search.
    weight_decays: the ``"pygcl"`` sweep (PyGCL examples ``(0,)``; GCL-SPAN
      ``(0, 1e-3, 5e-3, 1e-2, 0.1)``).
    epochs: ``"pygcl"`` full-batch Adam steps (official 5000).
    learning_rate: ``"pygcl"`` Adam learning rate (PyGCL 0.01; GCL-SPAN's copy uses 1e-3).
    test_interval: ``"pygcl"`` steps between scorings (official 20).

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
    if protocol == "pygcl":
      perm = np.random.default_rng(seed).permutation(len(y))
      n_tr, n_va = int(train_fraction * len(y)), int(val_fraction * len(y))
      split = {"train": perm[:n_tr], "valid": perm[n_tr:n_tr + n_va], "test": perm[n_tr + n_va:]}
      result = lr_evaluator(x, y, split, seed=seed, weight_decays=weight_decays, epochs=epochs,
                            learning_rate=learning_rate, test_interval=test_interval)
      accs.append(result["accuracy"])
      macros.append(result["macro_f1"])
      continue
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", (ConvergenceWarning, UserWarning, FutureWarning))
      x_n = normalize(x, norm="l2")
      x_tr, x_te, y_tr, y_te = train_test_split(x_n, y, train_size=train_fraction,
                                                random_state=seed)
      folds = max(2, min(cv_folds, int(np.bincount(y_tr).min(initial=cv_folds))))
      search = GridSearchCV(OneVsRestClassifier(LogisticRegression(solver="liblinear")),
                            {"estimator__C": list(c_grid)}, cv=folds, n_jobs=1)
      pred = search.fit(x_tr, y_tr).predict(x_te)
    accs.append(np.mean(pred == y_te))
    macros.append(f1_score(y_te, pred, average="macro"))
  return {"accuracy": float(np.mean(accs)), "accuracy_std": float(np.std(accs)),
          "macro_f1": float(np.mean(macros)), "macro_f1_std": float(np.std(macros))}


def lr_evaluator(embeddings, labels, split: dict, *, seed: int = 0,
                 weight_decays: Sequence[float] = (0.0,), epochs: int = 5000,
                 learning_rate: float = 0.01, test_interval: int = 20) -> dict[str, float]:
  """PyGCL's ``LREvaluator`` (and GCL-SPAN's weight-decay sweep around it), in JAX.

  A linear layer ``D -> C`` (xavier-uniform weight, PyTorch's ``U(+-1/sqrt(D))`` bias) is trained
  full-batch on the train nodes with the mean cross-entropy and ``torch.optim.Adam(lr,
  weight_decay=wd)`` (coupled L2, :func:`jspectral.train.optim.coupled_l2_adam`) for ``epochs``
  steps. Every ``test_interval`` steps validation and test are scored; the test scores at the
  first strictly best validation accuracy are kept (a run whose validation accuracy never
  exceeds 0 keeps 0, as the official code). Over ``weight_decays`` (all trained at once with
  ``vmap``) the run with the best validation accuracy wins, the first on ties.

  Args:
    embeddings: ``(N, D)`` frozen embeddings.
    labels: ``(N,)`` int labels ``0 .. C-1``.
    split: ``{"train", "valid", "test"}`` index arrays.
    seed: seed of the classifier initialisation.
    weight_decays: the L2 coefficients swept.
    epochs: Adam steps.
    learning_rate: Adam learning rate.
    test_interval: steps between scorings (``epochs`` must be a multiple).

  Returns:
    ``{"accuracy", "macro_f1", "accuracy_val"}`` Python floats (test accuracy = micro-F1).

  Raises:
    ValueError: on bad shapes, an empty split part, or ``epochs`` not a positive multiple of
      ``test_interval``.
  """
  x, y = _check(embeddings, labels)
  if epochs <= 0 or test_interval <= 0 or epochs % test_interval:
    raise ValueError(f"epochs, test_interval: expected epochs a positive multiple of "
                     f"test_interval, got {epochs} and {test_interval}")
  parts = [np.asarray(split[k]) for k in ("train", "valid", "test")]
  if any(p.size == 0 for p in parts):
    raise ValueError(f"split: every part must be non-empty, got sizes {[p.size for p in parts]}")
  num_classes = int(y.max()) + 1
  data = [(jnp.asarray(x[p], jnp.float32), jnp.asarray(y[p])) for p in parts]
  val_acc, test_acc, test_macro = _lr_traces(
      jax.random.key(seed), data, jnp.asarray(weight_decays, jnp.float32), num_classes,
      epochs // test_interval, test_interval, learning_rate)
  val_acc, test_acc, test_macro = map(np.asarray, (val_acc, test_acc, test_macro))
  best_val, best = 0.0, (0.0, 0.0)
  for run in range(len(weight_decays)):
    run_val, run_best = 0.0, (0.0, 0.0)
    for check in range(val_acc.shape[1]):
      if val_acc[run, check] > run_val:
        run_val, run_best = val_acc[run, check], (test_acc[run, check], test_macro[run, check])
    if run_val > best_val:
      best_val, best = run_val, run_best
  return {"accuracy": float(best[0]), "macro_f1": float(best[1]), "accuracy_val": float(best_val)}


def _macro_f1(pred, true, num_classes):
  """scikit-learn's macro F1 over the labels present in ``true`` or ``pred``."""
  p, t = jax.nn.one_hot(pred, num_classes), jax.nn.one_hot(true, num_classes)
  tp, n_pred, n_true = (p * t).sum(0), p.sum(0), t.sum(0)
  f1 = jnp.where(n_pred + n_true > 0, 2 * tp / jnp.maximum(n_pred + n_true, 1), 0.0)
  present = (n_pred + n_true) > 0
  return jnp.sum(f1) / jnp.sum(present)


@functools.partial(jax.jit, static_argnums=(3, 4, 5, 6))
def _lr_traces(key, data, weight_decays, num_classes, checks, interval, learning_rate):
  """Validation accuracy, test accuracy and macro F1 at every check, ``(W, checks)`` each."""
  (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = data
  dim = x_tr.shape[1]
  k_w, k_b = jax.random.split(key)
  limit = jnp.sqrt(6.0 / (dim + num_classes))
  init = {"w": jax.random.uniform(k_w, (dim, num_classes), minval=-limit, maxval=limit),
          "b": jax.random.uniform(k_b, (num_classes,), minval=-dim**-0.5, maxval=dim**-0.5)}

  def loss(params):
    logits = x_tr @ params["w"] + params["b"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, y_tr).mean()

  def one_run(wd):
    tx = coupled_l2_adam(learning_rate, wd)

    def step(carry, _):
      params, opt_state = carry
      updates, opt_state = tx.update(jax.grad(loss)(params), opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), None

    def check(carry, _):
      carry, _ = jax.lax.scan(step, carry, None, length=interval)
      params = carry[0]
      pred_va = jnp.argmax(x_va @ params["w"] + params["b"], -1)
      pred_te = jnp.argmax(x_te @ params["w"] + params["b"], -1)
      scores = (jnp.mean(pred_va == y_va), jnp.mean(pred_te == y_te),
                _macro_f1(pred_te, y_te, num_classes))
      return carry, scores

    _, scores = jax.lax.scan(check, (init, tx.init(init)), None, length=checks)
    return scores

  return jax.vmap(one_run)(weight_decays)


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
