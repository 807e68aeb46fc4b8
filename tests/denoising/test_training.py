"""Training through the engine's ``train_step`` with the denoising task: the loss must fall.

A full ``fit`` compiles its step with XLA's default optimisation, which costs more than this
suite's budget for these graphs; the smoke experiment runs ``fit`` end to end. Here the engine's
own ``train.train_step`` is compiled cheaply and stepped a few dozen times on tiny models.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jspectral import train
from jspectral.data import synthetic
from jspectral.denoising import hsdt, man
from jspectral.denoising.tasks import DenoisingTask, score


def _gaussian50(key, clean):
  return clean + (50.0 / 255.0) * jax.random.normal(key, clean.shape, clean.dtype)


@pytest.mark.parametrize("model, steps", [
    (hsdt.HSDT(channels=2, num_half_layer=2, sample_idx=(1,), num_bands=8), 40),
    (man.MAN(channels=2, num_half_layer=3, sample_idx=(1,)), 60)], ids=["hsdt", "man"])
@pytest.mark.slow  # ~25 s: 40-60 training steps
def test_training_loss_falls_and_beats_noisy_input(model, steps, fast_compile):
  cubes = np.asarray(jax.vmap(lambda k: synthetic.hyperspectral_cube(k, 8, 8, 8))(
      jax.random.split(jax.random.key(0), 8)))
  noisy = np.asarray(_gaussian50(jax.random.key(1), cubes[:2]))
  task = DenoisingTask(model, cubes, _gaussian50)
  batch = {"clean": jnp.asarray(cubes)}
  tx = optax.adam(1e-2)

  def init(rng):
    params, state = task.init(rng, batch)
    return train.TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), state, rng)

  ts = fast_compile(init, jax.random.key(2))(jax.random.key(2))
  step = fast_compile(functools.partial(train.train_step, loss_fn=task.loss, tx=tx), ts, batch)
  losses = []
  for _ in range(steps):
    ts, metrics, ok = step(ts, batch)
    assert bool(ok)
    losses.append(float(metrics["loss"]))
  assert np.mean(losses[-5:]) < np.mean(losses[:5]) / 2, losses
  if isinstance(model, hsdt.HSDT):
    assert set(ts.model_state) == {"batch_stats"}
  denoised = fast_compile(lambda p, s, x: jnp.clip(task.predict(p, s, x), 0, 1),
                          ts.params, ts.model_state, noisy)(ts.params, ts.model_state, noisy)
  assert score(cubes[:2], denoised)["psnr"] > score(cubes[:2], np.clip(noisy, 0, 1))["psnr"]


def test_curriculum_switches_the_training_noise_at_its_steps():
  def offset(value):
    return lambda key, clean: clean + value

  task = DenoisingTask(man.MAN(channels=2, num_half_layer=1, sample_idx=()),
                       np.zeros((2, 4, 4, 3), np.float32), offset(0.0),
                       curriculum=((0, offset(1.0)), (5, offset(2.0)), (9, offset(3.0))))
  clean = jnp.zeros((1, 2, 2, 3))
  noise_at = jax.jit(lambda step: task.training_noise(jax.random.key(0), clean, step)[0, 0, 0, 0])
  assert [float(noise_at(s)) for s in (0, 4, 5, 8, 9, 100)] == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
  with pytest.raises(ValueError, match="curriculum"):
    DenoisingTask(task.model, task.clean, task.noise, curriculum=((3, offset(1.0)),))


def test_phase_schedule_holds_each_rate_and_warms_up_where_flagged():
  from jspectral.denoising.tasks import phase_schedule

  phases = [(0, 2, 1e-3, False, "50"), (2, 3, 1e-4, False, "50"), (3, 5, 1e-3, True, "blind")]
  lr = phase_schedule(phases, steps_per_epoch=10)
  expected = {0: 1e-3, 19: 1e-3, 20: 1e-4, 29: 1e-4, 30: 0.0, 35: 5e-4, 40: 1e-3, 49: 1e-3}
  for step, value in expected.items():
    np.testing.assert_allclose(float(lr(step)), value, rtol=1e-6, atol=1e-12, err_msg=str(step))
