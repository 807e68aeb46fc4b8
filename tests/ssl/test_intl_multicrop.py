"""Full-resolution ImageNet views: the host crop stage, INTL_M's multi-crop loss and its EMA law."""

from __future__ import annotations

import io

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from PIL import Image

from jspectral import train
from jspectral.nn import resnet
from jspectral.ssl import intl, tasks
from jspectral.ssl import spectral_transform as st
from jspectral.train import checkpoint

PLAIN = dict(jitter_prob=0.0, gray_prob=0.0, flip_prob=0.0, mean=(0.0,) * 3, std=(1.0,) * 3)


def _smooth_image(rng, height=40, width=50) -> np.ndarray:
  """A smooth uint8 RGB image (resampling differences stay at the rounding level)."""
  y, x = np.mgrid[:height, :width] / 9.0
  phases = rng.uniform(0, 6, 3)
  img = 0.5 + 0.4 * np.stack([np.sin(x + p) * np.cos(0.7 * y - p) for p in phases], -1)
  return (255 * img).round().astype(np.uint8)


def _encoded(pixels: np.ndarray) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(pixels).save(buf, format="PNG")
  return buf.getvalue()


@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
def test_host_crop_matches_the_device_crop(interpolation):
  rng = np.random.default_rng(0)
  pixels = _smooth_image(rng)
  cfg = intl.ViewAugment(crop_size=16, scale=(0.2, 1.0), interpolation=interpolation, **PLAIN)
  for _ in range(4):
    u = rng.random(intl.NUM_UNIFORMS)
    box_np = intl._crop_box(u[:22], 40, 50, cfg.scale, cfg.ratio, xp=np)
    box_jnp = intl._crop_box(jnp.asarray(u[:22], jnp.float32), 40, 50, cfg.scale, cfg.ratio)
    np.testing.assert_array_equal(np.asarray(box_np), np.asarray(box_jnp))
    host = intl.crop_view(Image.fromarray(pixels), u, cfg).astype(np.float32) / 255
    device = np.asarray(intl.augment_image(jnp.asarray(u, jnp.float32),
                                           jnp.asarray(pixels, jnp.float32) / 255, cfg))
    np.testing.assert_allclose(host, device, atol=1.5 / 255)   # PIL rounds to uint8


def test_device_stage_of_host_crops():
  rng = np.random.default_rng(1)
  crops = [rng.integers(0, 256, (3, s, s, 3), dtype=np.uint8) for s in (12, 8)]
  views = [intl.ViewAugment(crop_size=s, **PLAIN) for s in (12, 8)]
  out = intl.augment_crops(jax.random.key(0), crops, views)
  for o, c in zip(out, crops, strict=True):
    np.testing.assert_allclose(np.asarray(o), c / 255.0, atol=1e-6)
  with pytest.raises(ValueError, match="crops"):
    intl.augment_crops(jax.random.key(0), crops[:1], views)
  with pytest.raises(ValueError, match=r"crops: expected \(N, 12, 12, 3\), got \(3, 8, 8, 3\)"):
    intl.augment_crops(jax.random.key(0), crops[::-1], views)


def _tiny_model() -> intl.INTLNet:
  return intl.INTLNet(resnet.ResNet(stage_sizes=(1, 1, 1, 1), width=4), intl.Projector(16, 24))


def test_multicrop_views_reach_the_momentum_loss_as_official(cheap_compiles):
  """INTL_M on multi-crop views: key = EMA net on view 0, queries = online net on the others,
  ``L = mean_q [mse_norm(t_q, t_k) + beta tl(t_q)]`` (official ``INTL_M.forward``)."""
  assert [v.crop_size for v in intl.multicrop_views(32)] == [32, 32, 27, 23, 18, 14]
  assert [v.scale for v in intl.multicrop_views()][2] == (0.171, 0.857)
  views = [dataclasses_replace(v) for v in intl.multicrop_views(32)[:3]]   # 32, 32, 27
  rng = np.random.default_rng(2)
  source = [{"image": _encoded(_smooth_image(rng, 36, 44)), "label": 3, "file_name": "x"}
            for _ in range(6)]
  task = tasks.INTLTask(_tiny_model(), source, views, ema_momentum=0.996, total_steps=10)
  examples = [task.augment(e, np.random.default_rng(i)) for i, e in enumerate(source)]
  assert sorted(examples[0]) == [f"crop{v}" for v in range(3)]          # no label, no name
  batch = {k: np.stack([e[k] for e in examples]) for k in examples[0]}
  params, state = jax.jit(task.init)(jax.random.key(0), None)
  loss_fn = jax.jit(task.loss)
  loss, aux = loss_fn(params, state, batch, jax.random.key(1))

  @jax.jit
  def embed(p, stats, x):
    return task.model.apply({"params": p, "batch_stats": stats}, x / 255.0, train=True,
                            mutable=["batch_stats"])[0][0]

  tk = st.iternorm(embed(state["ema"]["params"], state["ema"]["batch_stats"], batch["crop0"]))
  tq = [st.iternorm(embed(params, state["batch_stats"], batch[f"crop{v}"])) for v in range(1, 3)]
  beta = st.trade_off(6, 24)
  expected = np.mean([st.normalized_mse(t, tk) + beta * st.trace_loss(t) for t in tq])
  np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
  assert int(aux["state"]["ema_step"]) == 1
  swapped = dict(batch, crop0=batch["crop1"], crop1=batch["crop0"])   # view 0 is the key
  assert abs(float(loss_fn(params, state, swapped, jax.random.key(1))[0]) - expected) > 1e-4


def dataclasses_replace(view):
  """The view with its photometric stage switched off (the loss then sees the crops / 255)."""
  import dataclasses

  return dataclasses.replace(view, **PLAIN, blur_prob=0.0, solarize_prob=0.0)


def test_ema_fit_follows_the_official_momentum_law(tmp_path, cheap_compiles):
  """``theta_k <- m_t theta_k + (1 - m_t) theta_q`` before step t's loss, with
  ``m_t = 1 - (1 - m0)(1 + cos(pi t / T)) / 2``: checkpoints 1..3 of a streamed 3-step fit."""
  rng = np.random.default_rng(3)
  source = [{"image": _encoded(_smooth_image(rng, 30, 34)), "label": 0, "file_name": "x"}
            for _ in range(8)]
  views = intl.multicrop_views(16)[:2]
  task = tasks.INTLTask(_tiny_model(), source, views, ema_momentum=0.9, total_steps=3)
  config = train.default_config()
  config.update(total_steps=3, batch_size=8, log_every=1, checkpoint_every=1, keep_checkpoints=3,
                progress=False)
  config.optimizer.update(name="momentum", learning_rate=0.5, weight_decay=0.0)
  result = train.fit(task, config, tmp_path)
  assert int(result.model_state["ema_step"]) == 3
  mngr = checkpoint.manager(tmp_path / "checkpoints", 3)
  states = {s: mngr.restore(s, args=ocp.args.Composite(state=ocp.args.PyTreeRestore())).state
            for s in (1, 2, 3)}
  mngr.close()
  online = {s: states[s]["params"] for s in states}
  ema = {s: states[s]["model_state"]["ema"]["params"] for s in states}
  gap = max(float(np.max(np.abs(a - b))) for a, b in zip(jax.tree.leaves(online[1]),
                                                         jax.tree.leaves(ema[1]), strict=True))
  assert gap > 1e-3                                          # the online network has moved
  for t in (1, 2):
    m = 1 - 0.1 * (1 + np.cos(np.pi * t / 3)) / 2
    for e_new, e_old, q in zip(jax.tree.leaves(ema[t + 1]), jax.tree.leaves(ema[t]),
                               jax.tree.leaves(online[t]), strict=True):
      np.testing.assert_allclose(e_new, m * e_old + (1 - m) * q, rtol=1e-5, atol=1e-7)
