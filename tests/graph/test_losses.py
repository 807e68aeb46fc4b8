"""Loss properties beyond the parity cases, protocols, short GRACE / MVGRL / BGRL / G-BT fits."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import f1_score

from jspectral import train
from jspectral.data import synthetic_graphs
from jspectral.graph import encoders, losses, protocol, tasks


def test_grace_loss_gradient_matches_finite_differences():
  rng = np.random.default_rng(0)
  with jax.enable_x64(True):
    h1, h2 = jnp.asarray(rng.normal(size=(6, 3))), jnp.asarray(rng.normal(size=(6, 3)))
    f = jax.jit(lambda a: losses.grace_infonce(a, h2, 0.5))
    grad = jax.grad(f)(h1)
    direction = jnp.asarray(rng.normal(size=(6, 3)))
    eps = 1e-6
    fd = (f(h1 + eps * direction) - f(h1 - eps * direction)) / (2 * eps)
    np.testing.assert_allclose(jnp.sum(grad * direction), fd, rtol=1e-6)


def test_ntxent_mask_drops_padding_rows_and_keeps_gradients_finite():
  rng = np.random.default_rng(1)
  x, y = rng.normal(size=(5, 4)).astype(np.float32), rng.normal(size=(5, 4)).astype(np.float32)
  pad = np.zeros((3, 4), np.float32)
  mask = np.r_[np.ones(5, bool), np.zeros(3, bool)]
  full = losses.graphcl_ntxent(np.r_[x, pad], np.r_[y, pad], mask=mask)
  np.testing.assert_allclose(full, losses.graphcl_ntxent(x, y), rtol=1e-6)
  grad = jax.grad(lambda a: losses.graphcl_ntxent(a, np.r_[y, pad], mask=mask))(np.r_[x, pad])
  assert np.all(np.isfinite(grad))
  assert np.isnan(losses.graphcl_ntxent(np.r_[x, pad], np.r_[y, pad]))  # official: no epsilon


def test_jsd_bootstrap_barlow_closed_forms():
  s = jnp.array([0.3, -1.2, 2.0])
  expected = np.mean(np.log1p(np.exp(-s)) + s - np.log(2)) - np.mean(np.log(2) - np.log1p(
      np.exp(-s)))
  np.testing.assert_allclose(losses.jsd_loss(s, s), expected, rtol=1e-6)
  a = jnp.array([[1.0, 0.0], [0.0, 2.0]])
  np.testing.assert_allclose(losses.bootstrap_loss(a, 3 * a, a, a), 0.0, atol=1e-6)
  np.testing.assert_allclose(losses.bootstrap_loss(a, -a, a, -a), 4.0, atol=1e-6)
  rng = np.random.default_rng(2)
  h = rng.normal(size=(64, 3))
  # identical views: C_ii = (N-1)/N (unbiased std), so the invariance term is 3/N^2
  c = (h - h.mean(0)) / h.std(0, ddof=1)
  c = c.T @ c / 64
  off = c[~np.eye(3, dtype=bool)]
  np.testing.assert_allclose(losses.barlow_twins_loss(h, h, eps=0.0),
                             3 * (1 / 64) ** 2 + np.sum(off**2) / 3, rtol=1e-4)
  with pytest.raises(ValueError, match="h1, h2"):
    losses.grace_infonce(jnp.ones((3, 2)), jnp.ones((4, 2)))


def test_barlow_twins_default_eps_is_pygcl_class_value():
  # A column of std 1e-5 standardises to half its unit-std value with eps 1e-5 (PyGCL's
  # BarlowTwins class) and to ~1 with the bare function's 1e-15.
  rng = np.random.default_rng(5)
  h = rng.normal(size=(32, 2)) * np.array([1.0, 1e-5])
  np.testing.assert_allclose(losses.barlow_twins_loss(h, h), losses.barlow_twins_loss(
      h, h, eps=1e-5), rtol=1e-6)
  std = h.std(0, ddof=1)
  c_diag = (31 / 32) * (std / (std + 1e-5)) ** 2  # (N-1)/N (std / (std + eps))^2
  assert c_diag[1] < 0.4
  np.testing.assert_allclose(losses.barlow_twins_loss(h, h, lambda_=0.0),
                             np.sum((1 - c_diag) ** 2), rtol=1e-3)
  assert abs(losses.barlow_twins_loss(h, h, lambda_=0.0, eps=1e-15) - 2 * (1 / 32) ** 2) < 1e-4


def test_karate_club_has_pyg_four_communities_and_networkx_clubs():
  graph, labels = synthetic_graphs.karate_club()
  np.testing.assert_array_equal(np.bincount(labels), [13, 12, 4, 5])
  assert int(graph.n_edge[0]) == 156 and labels[0] == 1 and labels[33] == 0
  _, clubs = synthetic_graphs.karate_club("club")
  np.testing.assert_array_equal(np.bincount(clubs), [17, 17])
  with pytest.raises(ValueError, match="labels"):
    synthetic_graphs.karate_club("faction")


def test_protocols_on_separable_embeddings():
  rng = np.random.default_rng(3)
  labels = np.repeat(np.arange(3), 40)
  emb = np.eye(3)[labels] * 5 + rng.normal(size=(120, 3)) * 0.3
  grace = protocol.node_probe(emb, labels, protocol="grace", seeds=(0, 1), train_fraction=0.3,
                               c_grid=(0.1, 1.0, 10.0))
  pygcl = protocol.node_probe(emb, labels, seeds=(0,), epochs=200)
  svm = protocol.graph_svm(emb, labels, folds=3, c_grid=(1.0,))
  assert grace["accuracy"] > 0.95 and pygcl["accuracy"] > 0.95 and svm["accuracy"] > 0.95
  noise = protocol.graph_svm(rng.normal(size=(120, 3)), labels, folds=3, c_grid=(1.0,))
  assert noise["accuracy"] < 0.6
  with pytest.raises(ValueError, match="embeddings"):
    protocol.node_probe(emb[:5], labels)


def test_lr_evaluator_sweeps_weight_decay_on_validation_and_scores_macro_f1():
  rng = np.random.default_rng(4)
  labels = np.repeat(np.arange(3), 50)
  emb = np.eye(3)[labels] + rng.normal(size=(150, 3)) * 0.4
  perm = rng.permutation(150)
  split = {"train": perm[:15], "valid": perm[15:135], "test": perm[135:]}  # PyGCL 10 / 80 / 10
  kw = dict(epochs=400, test_interval=20)
  good = protocol.lr_evaluator(emb, labels, split, weight_decays=(0.0,), **kw)
  crushed = protocol.lr_evaluator(emb, labels, split, weight_decays=(50.0,), **kw)
  swept = protocol.lr_evaluator(emb, labels, split, weight_decays=(50.0, 0.0), **kw)
  assert good["accuracy_val"] > 0.8 and crushed["accuracy_val"] < good["accuracy_val"]
  assert swept == good  # the sweep keeps the run with the best validation accuracy
  pred, true = rng.integers(0, 4, 50), rng.integers(0, 3, 50)
  np.testing.assert_allclose(protocol._macro_f1(pred, true, 4), f1_score(true, pred,
                                                                           average="macro"),
                             rtol=1e-6)
  with pytest.raises(ValueError, match="test_interval"):
    protocol.lr_evaluator(emb, labels, split, epochs=30, test_interval=20)
  with pytest.raises(ValueError, match="split"):
    protocol.lr_evaluator(emb, labels, {**split, "test": perm[:0]})


def test_grace_fit_loss_falls(tmp_path):
  graph, labels = synthetic_graphs.karate_club()
  task = tasks.NodeContrastTask(graph, labels, encoders.GRACE(16, 16),
                                (tasks.View("drop_edges", 0.2, 0.3),
                                 tasks.View("drop_edges", 0.4, 0.4)), tau=0.5,
                                probe=dict(protocol="grace", seeds=(0,), train_fraction=0.5,
                                           c_grid=(1.0,)))
  config = train.default_config()
  config.update(total_steps=60, batch_size=1, log_every=10, checkpoint_every=1000,
                progress=False)
  config.optimizer.learning_rate = 5e-3
  result = train.fit(task, config, tmp_path / "grace")
  curve = [r["loss"] for r in result.history if "loss" in r]
  assert curve[-1] < 0.9 * curve[0]
  assert 0.0 <= result.evals["eval/accuracy"] <= 1.0


# Each framework: (task class, model, lr, statement about the loss). JSD is negative-valued with
# minimum -2 log 2, so MVGRL's criterion is an absolute fall; the others fall by a factor.
FRAMEWORKS = {
    "mvgrl": (tasks.MVGRLNodeTask, lambda: encoders.MVGRLNode(16), 5e-3,
              lambda first, last: last < first - 0.02),
    "bgrl": (tasks.BGRLTask, lambda: encoders.BGRL(16), 5e-3,
             lambda first, last: last < 0.85 * first),
    "gbt": (tasks.GBTTask, lambda: encoders.GBTEncoder(16), 5e-3,
            lambda first, last: last < 0.85 * first),
}


@pytest.mark.parametrize("name", sorted(FRAMEWORKS))
def test_node_framework_fit_loss_falls(name, tmp_path):
  task_cls, model, lr, falls = FRAMEWORKS[name]
  graph, labels = synthetic_graphs.karate_club()
  task = task_cls(graph, labels, model(), (tasks.View("drop_edges", 0.2, 0.2),
                                           tasks.View("drop_edges", 0.3, 0.2)),
                  probe=dict(protocol="grace", seeds=(0,), train_fraction=0.5, c_grid=(1.0,)))
  config = train.default_config()
  config.update(total_steps=30, batch_size=1, log_every=1, checkpoint_every=1000, progress=False)
  config.optimizer.learning_rate = lr
  result = train.fit(task, config, tmp_path / name)
  curve = np.array([r["loss"] for r in result.history if "loss" in r])
  assert falls(curve[:5].mean(), curve[-5:].mean()), curve
  assert 0.0 <= result.evals["eval/accuracy"] <= 1.0
