"""Optimizers, schedules and parameter masks built from a config."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from numpy.testing import assert_allclose

from jspectral import train


def config(**optimizer):
  c = train.default_config()
  c.optimizer.update(optimizer)
  return c


def test_warmup_cosine_values():
  c = config(learning_rate=1.0)
  c.schedule.update(name="warmup_cosine", warmup_steps=10, min_lr_ratio=0.1)
  schedule = train.make_schedule(c, total_steps=110)
  assert_allclose([schedule(0), schedule(5), schedule(10), schedule(110)], [0, 0.5, 1, 0.1],
                  atol=1e-6)
  assert_allclose(schedule(60), 0.1 + 0.9 * 0.5, atol=1e-6)  # half-way down the cosine


def test_step_decay_and_cyclic():
  c = config(learning_rate=0.1)
  c.schedule.update(name="step", boundaries=[10, 20], decay_factor=0.1)
  schedule = train.make_schedule(c, 30)
  assert_allclose([schedule(9), schedule(10), schedule(25)], [0.1, 0.01, 0.001], rtol=1e-6)
  c.schedule.boundaries = [10, 20, 20]  # a repeated boundary decays twice
  assert_allclose(train.make_schedule(c, 30)(25), 1e-4, rtol=1e-6)
  c.schedule.update(name="exponential", decay_factor=1e-3)  # NSM's 1000x decay over the run
  assert_allclose([train.make_schedule(c, 30)(s) for s in (0, 15, 30)], [0.1, 0.1 * 10**-1.5, 1e-4],
                  rtol=1e-5)
  cyclic = train.cyclic_schedule(1.0, 0.0, cycle_steps=8)
  assert_allclose([cyclic(s) for s in (0, 2, 4, 6, 8)], [0, 0.5, 1, 0.5, 0], atol=1e-6)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam", "adam_l2", "adamw", "lars"])
def test_every_optimizer_descends_a_quadratic(name):
  c = config(name=name, learning_rate=0.05, weight_decay=1e-4)
  tx, _ = train.make_optimizer(c, 100)
  params = {"w": jnp.full((3, 2), 2.0), "b": jnp.ones((2,))}
  state = tx.init(params)
  loss = lambda p: sum(jnp.sum(x**2) for x in jax.tree.leaves(p))
  start = loss(params)
  for _ in range(20):
    updates, state = tx.update(jax.grad(loss)(params), state, params)
    params = optax.apply_updates(params, updates)
  # LARS scales each step by its trust ratio (coefficient 1e-3), so it moves far less in 20 steps.
  assert loss(params) < (0.999 if name == "lars" else 0.9) * start


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_decay_1d_false_leaves_biases_and_norm_scales_undecayed(name):
  # Zero gradients: the only update is weight decay, -lr * wd * p for SGD and AdamW alike.
  c = config(name=name, learning_rate=0.5, weight_decay=0.1, decay_1d=False)
  tx, _ = train.make_optimizer(c, 10)
  params = {"kernel": jnp.full((2, 2), 2.0), "bias": jnp.full((2,), 2.0)}
  zeros = jax.tree.map(jnp.zeros_like, params)
  updates, _ = tx.update(zeros, tx.init(params), params)
  assert_allclose(updates["kernel"], -0.5 * 0.1 * 2.0, rtol=1e-6)
  np.testing.assert_array_equal(updates["bias"], 0.0)
  c.optimizer.decay_1d = True
  tx, _ = train.make_optimizer(c, 10)
  updates, _ = tx.update(zeros, tx.init(params), params)
  assert_allclose(updates["bias"], -0.5 * 0.1 * 2.0, rtol=1e-6)


def test_trainable_mask_freezes_everything_else_and_clipping_bounds_the_update():
  c = config(name="sgd", learning_rate=1.0)
  c.trainable = r"lora"
  c.grad_clip_norm = 0.5
  tx, _ = train.make_optimizer(c, 10)
  params = {"dense": {"kernel": jnp.ones(3), "lora_a": jnp.ones(3)}}
  grads = jax.tree.map(lambda p: 10 * p, params)
  updates, _ = tx.update(grads, tx.init(params), params)
  np.testing.assert_array_equal(updates["dense"]["kernel"], 0.0)
  assert_allclose(jnp.linalg.norm(updates["dense"]["lora_a"]), 0.5, rtol=1e-5)


def test_adam_l2_is_torch_adam_with_coupled_weight_decay_in_closed_form():
  # torch Adam(weight_decay=wd): g' = g + wd p; m1 = (1-b1) g', v1 = (1-b2) g'^2, bias-corrected
  # m_hat = g', v_hat = g'^2, so the first update is -lr g' / (|g'| + eps); the second uses the
  # moment averages of g'_1, g'_2. AdamW's first step is -lr (sign(g) + wd p) instead.
  lr, wd, eps = 0.1, 0.5, 1e-8
  c = config(name="adam_l2", learning_rate=lr, weight_decay=wd, eps=eps)
  tx, _ = train.make_optimizer(c, 10)
  p0 = {"w": jnp.array([1.0, -2.0, 0.3]), "b": jnp.array([0.5])}
  g = {"w": jnp.array([-0.4, 0.1, 0.0]), "b": jnp.array([-0.25])}
  state = tx.init(p0)
  u1, state = tx.update(g, state, p0)
  for k in p0:
    gd = np.asarray(g[k]) + wd * np.asarray(p0[k])
    assert_allclose(u1[k], -lr * gd / (np.abs(gd) + eps), rtol=2e-5)
  assert_allclose(u1["b"], 0.0, atol=1e-6)  # g + wd p = 0: coupled decay cancels the gradient
  p1 = optax.apply_updates(p0, u1)
  u2, _ = tx.update(g, state, p1)
  b1, b2 = 0.9, 0.999
  for k in p0:
    ga = np.asarray(g[k]) + wd * np.asarray(p0[k])
    gb = np.asarray(g[k]) + wd * np.asarray(p1[k])
    m = ((1 - b1) * b1 * ga + (1 - b1) * gb) / (1 - b1**2)
    v = ((1 - b2) * b2 * ga**2 + (1 - b2) * gb**2) / (1 - b2**2)
    assert_allclose(u2[k], -lr * m / (np.sqrt(v) + eps), rtol=1e-5, atol=1e-7)
  c.optimizer.name = "adamw"
  tx_w, _ = train.make_optimizer(c, 10)
  u_w, _ = tx_w.update(g, tx_w.init(p0), p0)
  assert not np.allclose(u_w["w"], u1["w"])
  with pytest.raises(ValueError, match="weight_decay"):
    train.make_optimizer(config(name="adam_l2", weight_decay=-1.0), 10)


def test_unknown_names_are_refused():
  with pytest.raises(ValueError, match="config.optimizer.name"):
    train.make_optimizer(config(name="rmsprop"), 10)
  c = config()
  c.schedule.name = "linear"
  with pytest.raises(ValueError, match="config.schedule.name"):
    train.make_optimizer(c, 10)
  with pytest.raises(ValueError, match="cycle_steps"):
    train.cyclic_schedule(1.0, 0.0, 1)


def test_skip_unused_leaves_a_parameter_without_gradient_alone_as_torch_does():
  import jax.numpy as jnp
  import optax

  from jspectral.train import optim

  params = {"used": jnp.ones(2), "branch": jnp.ones(2)}
  both = {"used": jnp.ones(2), "branch": jnp.ones(2)}
  only_used = {"used": jnp.ones(2), "branch": jnp.zeros(2)}      # branch not taken this step
  plain = optax.scale_by_adam()
  torchlike = optim.skip_unused(optax.scale_by_adam())
  results = {}
  for name, tx in (("plain", plain), ("torch", torchlike)):
    state = tx.init(params)
    _, state = tx.update(both, state, params)
    update, state = tx.update(only_used, state, params)
    results[name] = update
  assert np.all(np.asarray(results["torch"]["branch"]) == 0)        # no update, no state change
  assert np.all(np.abs(np.asarray(results["plain"]["branch"])) > 0.1)  # momentum keeps moving it
  np.testing.assert_allclose(results["torch"]["used"], results["plain"]["used"], rtol=1e-6)


def test_adamw_skip_unused_neither_decays_nor_counts_a_frozen_leaf():
  """torch AdamW on a tensor whose grad is None (DINO's last layer in epoch 0): no decoupled
  decay, no moments, and its own step count, so its first real step is Adam's first step."""
  c = config()
  c.optimizer.update(name="adamw", learning_rate=0.1, weight_decay=0.5, skip_unused=True)
  tx, _ = train.make_optimizer(c, 10)
  params = {"frozen": jnp.full(2, 2.0), "live": jnp.full(2, 2.0)}
  state = tx.init(params)
  for _ in range(2):   # epoch 0: the frozen leaf has an all-zero gradient
    updates, state = tx.update({"frozen": jnp.zeros(2), "live": jnp.ones(2)}, state, params)
    assert np.all(np.asarray(updates["frozen"]) == 0)
    params = optax.apply_updates(params, updates)
  updates, state = tx.update({"frozen": jnp.full(2, 3.0), "live": jnp.ones(2)}, state, params)
  # first Adam step of that leaf: m_hat / sqrt(v_hat) = 1, plus the decay, both times lr
  np.testing.assert_allclose(updates["frozen"], -0.1 * (1.0 + 0.5 * 2.0), rtol=1e-5)
  with pytest.raises(ValueError, match="adam and adamw"):
    c.optimizer.update(name="momentum")
    train.make_optimizer(c, 10)
