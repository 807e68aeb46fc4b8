"""Frozen-feature evaluation of self-supervised encoders: k-nearest neighbours and a linear probe.

Protocols of winci-ai/INTL ``cifar/eval/evaluate.py`` ("Modulate Your Spectrum in Self-Supervised
Learning", Weng et al., ICLR 2024):

* kNN: Euclidean distances, the k = 5 nearest training features, majority vote by label counts, ties
  broken towards the smallest label; no feature normalisation, no weighting. A cosine-similarity,
  temperature-weighted vote (``exp(s / T)``, Wu et al. 2018 / DINO style) is available as an option.
* linear probe: one dense layer trained with Adam (lr 1e-2, L2 weight decay 5e-6 added to the
  gradient as PyTorch's Adam does), 500 epochs of shuffled mini-batches of 1000, the learning rate
  decayed exponentially per epoch to 1e-6; reports top-1 and top-5 accuracy. Deviation (plumbing):
  the official code requires the training-set size to be divisible by 1000; here the batch is
  ``min(1000, N)`` and the last incomplete batch of each epoch is dropped.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax


def _check_features(x: np.ndarray, y: np.ndarray, name: str) -> None:
  if np.ndim(x) != 2:
    raise ValueError(f"x_{name}: expected features of shape (N, F), got shape {np.shape(x)}")
  if np.shape(y) != (np.shape(x)[0],):
    raise ValueError(f"y_{name}: expected integer labels of shape ({np.shape(x)[0]},), got shape "
                     f"{np.shape(y)}")


@functools.partial(jax.jit, static_argnames=("k", "num_classes", "metric", "chunk"))
def knn_predict(x_train: jax.Array, y_train: jax.Array, x_test: jax.Array, *, k: int = 5,
                num_classes: int, metric: str = "euclidean", temperature: float = 0.07,
                chunk: int = 1024) -> jax.Array:
  """Labels of ``x_test`` voted by their k nearest training features.

  ``metric="euclidean"`` is the official rule: a majority vote of the k nearest by Euclidean
  distance, ties going to the smallest label. ``metric="cosine"``: features are L2-normalised and
  the k most similar vote with weight ``exp(s / T)`` (Wu et al. 2018 / DINO style). Test rows are
  processed in chunks of ``chunk`` to bound memory.

  Args:
    x_train: training features ``(N, F)``.
    y_train: integer training labels ``(N,)`` in ``[0, num_classes)``.
    x_test: test features ``(M, F)``.
    k: number of neighbours that vote.
    num_classes: number of classes (static).
    metric: ``"euclidean"`` (official) or ``"cosine"``.
    temperature: ``T`` of the cosine vote weights.
    chunk: test rows per chunk.

  Returns:
    Predicted labels, integer array of shape ``(M,)``.
  """
  if metric == "cosine":
    x_train = x_train / jnp.linalg.norm(x_train, axis=1, keepdims=True).clip(1e-12)
    x_test = x_test / jnp.linalg.norm(x_test, axis=1, keepdims=True).clip(1e-12)
  train_sq = jnp.sum(x_train ** 2, axis=1)

  def predict(xt):
    if metric == "cosine":
      score = xt @ x_train.T
    else:  # negative squared distance: same order as -cdist
      score = -(jnp.sum(xt ** 2, axis=1, keepdims=True) - 2 * xt @ x_train.T + train_sq)
    top, idx = jax.lax.top_k(score, k)
    weight = jnp.exp(top / temperature) if metric == "cosine" else jnp.ones_like(top)
    votes = jnp.sum(jax.nn.one_hot(y_train[idx], num_classes) * weight[..., None], axis=1)
    return jnp.argmax(votes, axis=1)  # first maximum = smallest label

  m = x_test.shape[0]
  pad = (-m) % chunk if m > chunk else 0
  size = chunk if m > chunk else m
  padded = jnp.pad(x_test, ((0, pad), (0, 0))).reshape(-1, size, x_test.shape[1])
  return jax.lax.map(predict, padded).reshape(-1)[:m]


def knn_accuracy(x_train, y_train, x_test, y_test, k: int = 5, metric: str = "euclidean",
                 temperature: float = 0.07) -> float:
  """kNN top-1 accuracy of frozen features (:func:`knn_predict`), with input validation.

  Args:
    x_train: training features ``(N, F)``.
    y_train: integer training labels ``(N,)``.
    x_test: test features ``(M, F)``.
    y_test: integer test labels ``(M,)``.
    k: number of neighbours that vote (official 5), ``1 <= k <= N``.
    metric: ``"euclidean"`` (official) or ``"cosine"``.
    temperature: ``T`` of the cosine vote weights.

  Returns:
    The fraction of test rows whose prediction equals ``y_test``, a Python float.

  Raises:
    ValueError: if a feature array is not ``(N, F)``, labels do not match it, ``metric`` is
      unknown or ``k`` is out of range.
  """
  _check_features(x_train, y_train, "train")
  _check_features(x_test, y_test, "test")
  if metric not in ("euclidean", "cosine"):
    raise ValueError(f"metric: expected 'euclidean' or 'cosine', got {metric!r}")
  if not 1 <= k <= np.shape(x_train)[0]:
    raise ValueError(f"k: expected 1 <= k <= {np.shape(x_train)[0]} training rows, got {k}")
  num_classes = int(max(np.max(y_train), np.max(y_test))) + 1
  pred = knn_predict(jnp.asarray(x_train), jnp.asarray(y_train), jnp.asarray(x_test), k=k,
                     num_classes=num_classes, metric=metric, temperature=temperature)
  return float(np.mean(np.asarray(pred) == np.asarray(y_test)))


@functools.partial(jax.jit, static_argnames=("num_classes", "epochs", "batch_size"))
def _train_linear(key, x, y, *, num_classes, epochs, batch_size, lr_start, lr_end, weight_decay):
  n, f = x.shape
  bound = 1.0 / np.sqrt(f)  # PyTorch Linear default init
  k_w, k_b, k_perm = jax.random.split(key, 3)
  params = {"w": jax.random.uniform(k_w, (f, num_classes), x.dtype, -bound, bound),
            "b": jax.random.uniform(k_b, (num_classes,), x.dtype, -bound, bound)}
  steps_per_epoch = n // batch_size
  gamma = (lr_end / lr_start) ** (1.0 / epochs)
  schedule = lambda step: lr_start * gamma ** (step // steps_per_epoch)
  tx = optax.chain(optax.add_decayed_weights(weight_decay), optax.adam(schedule))
  opt_state = tx.init(params)

  def loss_fn(p, xb, yb):
    logits = xb @ p["w"] + p["b"]
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, yb))

  def epoch(carry, ekey):
    perm = jax.random.permutation(ekey, n)[:steps_per_epoch * batch_size]
    perm = perm.reshape(steps_per_epoch, batch_size)

    def step(carry, idx):
      p, s = carry
      grads = jax.grad(loss_fn)(p, x[idx], y[idx])
      updates, s = tx.update(grads, s, p)
      return (optax.apply_updates(p, updates), s), None

    return jax.lax.scan(step, carry, perm)[0], None

  (params, _), _ = jax.lax.scan(epoch, (params, opt_state), jax.random.split(k_perm, epochs))
  return params


def linear_probe(x_train, y_train, x_test, y_test, *, key: jax.Array, epochs: int = 500,
                 batch_size: int = 1000, lr_start: float = 1e-2, lr_end: float = 1e-6,
                 weight_decay: float = 5e-6) -> dict[str, float]:
  """Official CIFAR linear evaluation: one dense layer on frozen features.

  Adam with L2 weight decay added to the gradient (as PyTorch's Adam does), shuffled mini-batches,
  the learning rate decayed exponentially per epoch from ``lr_start`` to ``lr_end``; PyTorch's
  default ``Linear`` initialisation. The batch is ``min(batch_size, N)`` and the last incomplete
  batch of each epoch is dropped (the official code requires ``N`` divisible by 1000).

  Args:
    x_train: training features ``(N, F)``.
    y_train: integer training labels ``(N,)``.
    x_test: test features ``(M, F)``.
    y_test: integer test labels ``(M,)``.
    key: PRNG key for the initialisation and the shuffles.
    epochs: training epochs (official 500).
    batch_size: mini-batch size (official 1000).
    lr_start: initial learning rate (official 1e-2).
    lr_end: learning rate after the last epoch (official 1e-6).
    weight_decay: L2 coefficient added to the gradient (official 5e-6).

  Returns:
    ``{"top1": ..., "top5": ...}`` test accuracies, Python floats.

  Raises:
    ValueError: if a feature array is not ``(N, F)``, labels do not match it or ``epochs < 1``.
  """
  _check_features(x_train, y_train, "train")
  _check_features(x_test, y_test, "test")
  if epochs < 1:
    raise ValueError(f"epochs: expected >= 1, got {epochs}")
  num_classes = int(max(np.max(y_train), np.max(y_test))) + 1
  x_train = jnp.asarray(x_train, jnp.float32)
  params = _train_linear(key, x_train, jnp.asarray(y_train), num_classes=num_classes,
                         epochs=epochs, batch_size=min(batch_size, x_train.shape[0]),
                         lr_start=lr_start, lr_end=lr_end, weight_decay=weight_decay)
  logits = np.asarray(jnp.asarray(x_test, jnp.float32) @ params["w"] + params["b"])
  order = np.argsort(-logits, axis=1)
  hits = order == np.asarray(y_test)[:, None]
  return {"top1": float(hits[:, :1].any(1).mean()),
          "top5": float(hits[:, :min(5, num_classes)].any(1).mean())}
