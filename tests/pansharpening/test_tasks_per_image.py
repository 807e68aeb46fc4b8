"""Training recipes of the toolbox's deep methods: configs, initialisation, supervised tasks, prior
fitting, R-PNN test-time adaptation (seam flag) and the PCA stage of PCA-Z-PNN."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral import train
from jspectral.data import wald
from jspectral.pansharpening import deep, per_image, tasks

RATIO = 6


def prisma_wavelengths():
  """The toolbox's 159 selected PRISMA wavelengths (VNIR 400..1010 / 66, SWIR 920..2505 / 173)."""
  wl = np.concatenate([np.linspace(400, 1010, 66), np.linspace(920, 2505, 173)])
  keep = np.concatenate([np.arange(7, 63), np.arange(71, 86), np.arange(89, 107),
                         np.arange(120, 150), np.arange(176, 216)])
  return wl[keep]


@pytest.fixture(scope="module")
def scene():
  """An RR scene with HR 66 px (the smallest the 61-tap spectral loss accepts), 4 bands."""
  s = wald.synthetic_rr_scene(jax.random.key(0), 33, 4, RATIO, crop=11)
  return {k: np.asarray(v) for k, v in s.items()}


def test_train_config_recipes():
  """Spec check 18: loss, optimiser, lr, epochs and batch of every supervised method."""
  expect = {"hyperpnn": ("mse", 1e-4, 5000, 64), "hspenet": ("mse_sam", 1e-4, 4000, 64),
            "hyper_dsnet": ("mse", 1e-4, 5000, 32), "darn": ("l1", 1e-3, 1500, 64),
            "dip_hyperkite": ("l1", 1e-3, 2500, 2)}
  for name, (loss, lr, epochs, batch) in expect.items():
    r = tasks.RECIPES[name]
    assert (r.loss, r.learning_rate, r.epochs, r.batch_size) == (loss, lr, epochs, batch)
    c = tasks.train_config(name, 130)
    assert c.optimizer.name == "adam" and c.optimizer.learning_rate == lr
    assert c.batch_size == batch and c.total_steps == epochs * -(-130 // batch)
  kite = tasks.train_config("dip_hyperkite", 4)         # 2 steps per epoch
  assert kite.schedule.name == "step" and kite.schedule.boundaries == [2000, 4000]
  assert tasks.RECIPES["dip_hyperkite"].weight_decay == 1e-4
  assert per_image.PRIOR_RECIPES["dhp"]["iterations"] == 10_000
  with pytest.raises(ValueError, match="name"):
    tasks.train_config("pnn", 4)


def test_official_init():
  params = {"a": {"conv": {"kernel": jnp.ones((3, 3, 4, 8)), "bias": jnp.ones(8)}},
            "block2_conv1": {"conv": {"kernel": jnp.ones((3, 3, 4, 8)), "bias": jnp.ones(8)}},
            "block1": {"sobel_x": jnp.ones((3, 3, 1, 1))}, "bn": {"scale": jnp.ones(8)}}
  key = jax.random.key(0)
  torch = deep.official_init(params, key)
  bound = 1 / 6.0                                          # 1 / sqrt(3 * 3 * 4)
  assert float(jnp.max(jnp.abs(torch["a"]["conv"]["kernel"]))) <= bound
  assert 0 < float(jnp.max(jnp.abs(torch["a"]["conv"]["bias"]))) <= bound
  ds = deep.official_init(params, key, "hyper_dsnet")
  np.testing.assert_array_equal(ds["block2_conv1"]["conv"]["bias"], 0.0)
  assert float(jnp.max(jnp.abs(ds["block2_conv1"]["conv"]["kernel"]))) > bound   # std 1/6/0.88
  np.testing.assert_array_equal(ds["a"]["conv"]["kernel"], torch["a"]["conv"]["kernel"])
  np.testing.assert_array_equal(ds["block1"]["sobel_x"], 1.0)                   # fixed taps
  he = deep.official_init({"c": {"kernel": jnp.ones((3, 3, 16, 64))}}, key, "he_normal")
  np.testing.assert_allclose(np.std(he["c"]["kernel"]), np.sqrt(2 / (9 * 64)), rtol=0.05)
  with pytest.raises(ValueError, match="scheme"):
    deep.official_init(params, key, "xavier")


def test_supervised_tasks_and_short_fit(tmp_path):
  """DARN's prior-fed and Kite's tasks give finite losses with their own inputs (the plain
  HyperPNN / Hyper-DSNet tasks take the HSpeNet path below); Kite updates BN statistics and adds
  the coupled L2; a short HSpeNet fit (0.9 MSE + 0.1 SAM) lowers its loss 2x."""
  s = wald.synthetic_rr_scene(jax.random.key(3), 32, 4, RATIO, crop=2)   # HR 12 x 12
  ex = tasks.rr_examples([{k: np.asarray(v) for k, v in s.items()}], "hyperpnn")[0]
  batch = {k: v[None] for k, v in ex.items()}
  batch["prior"] = batch["hs_up"]
  small = {"darn": {"features": 16}, "dip_hyperkite": {"filters": (4, 4, 4)}}
  for name in ("darn", "dip_hyperkite"):
    task = tasks.SupervisedTask(name, [ex], model_kwargs=small.get(name))
    params, state = jax.jit(task.init)(jax.random.key(1), batch)
    loss, aux = jax.jit(task.loss)(params, state, batch, None)
    assert np.isfinite(float(loss)), name
    if name == "dip_hyperkite":
      assert set(aux["state"]) == {"batch_stats"}
      l2 = sum(float(jnp.sum(p ** 2)) for p in jax.tree_util.tree_leaves(params))
      np.testing.assert_allclose(float(loss) - float(aux["l1"]), 0.5e-4 * l2, rtol=1e-3)
  task = tasks.SupervisedTask("hspenet", [ex])
  config = tasks.train_config("hspenet", 1, epochs=30)
  config.optimizer.learning_rate = 1e-3
  result = train.fit(task, config, tmp_path / "hspenet")
  losses = [h["loss"] for h in result.history if "loss" in h]
  assert losses[-1] < losses[0] / 2, losses
  fused = task.predict(result.params, result.model_state, ex)
  assert fused.shape == (12, 12, 4) and np.all(np.isfinite(fused))


@pytest.mark.slow  # ~25 s: a DIP/DHP network trained inside one lax loop
@pytest.mark.parametrize("kind", ["dhp", "dip"])
def test_fit_prior(kind):
  """The per-image prior fit lowers its loss and returns a [0, 1] cube of the HR size."""
  s = wald.synthetic_rr_scene(jax.random.key(2), 32, 3, RATIO, crop=8)
  hs_lr, pan = np.asarray(s["hs_lr"]) / 2 ** 16, np.asarray(s["pan"]) / 2 ** 16
  prior, trace = per_image.fit_prior(kind, hs_lr, pan, jax.random.key(0), iterations=16,
                                    learning_rate=1e-2, prior_kwargs={"features": 4})
  assert prior.shape == (48, 48, 3)
  assert float(prior.min()) >= 0 and float(prior.max()) <= 1
  assert float(trace[-1]) < 0.5 * float(trace[0])
  with pytest.raises(ValueError, match="kind"):
    per_image.fit_prior("vae", hs_lr, pan, jax.random.key(0))


def test_rpnn_iterations_seam_flag():
  """Spec check 17 and the seam defect: the seam band gets 0 updates, 30 with ``|dl|``."""
  wl = prisma_wavelengths()
  assert wl.size == 159 and np.round(wl[55], 1) == 981.8 and np.round(wl[56], 1) == 966.1
  official = per_image.rpnn_iterations(wl)
  fixed = per_image.rpnn_iterations(wl, seam="absolute")
  assert official[0] == 20 and official[1] == 15 and official.max() == 80
  assert official[56] == 0 and fixed[56] == 30
  np.testing.assert_array_equal(np.delete(official, 56), np.delete(fixed, 56))


@pytest.mark.slow  # ~30 s: R-PNN's per-band adaptation loop
def test_r_pnn_adapt(scene):
  """Band 0 adapts (loss trace recorded, best checkpoint); a band with 0 updates is predicted with
  the carried weights; output in DN, rounded."""
  module = deep.RPNNToolbox()
  params = module.init(jax.random.key(0), jnp.zeros((1, 78, 78, 2)))["params"]
  wl = np.array([500.0, 510.0, 520.0, 505.0])
  res = per_image.r_pnn_adapt(params, scene["hs_lr"], scene["hs_up"], scene["pan"], wl,
                             learning_rate=1e-4, iterations=[3, 2, 0, 0])
  assert res.fused.shape == scene["gt"].shape and res.loss_spec[0].shape == (3,)
  np.testing.assert_array_equal(res.fused, np.round(res.fused))
  assert len(res.loss_spec[2]) == 0
  with pytest.raises(ValueError, match="wavelengths"):
    per_image.r_pnn_adapt(params, scene["hs_lr"], scene["hs_up"], scene["pan"], wl[:3])


def test_pca_stage(scene):
  """PCA round trip, decorrelated components, the spline upsampler equals skimage's rescale, and
  PCA-Z-PNN with a zero residual returns each block's inverse PCA of its upsampled components
  (block 0 without its last band, which block 1 supplies)."""
  from skimage import transform  # dev extra: the test never skips
  x = np.asarray(scene["hs_lr"], np.float64)
  with jax.enable_x64(True):
    pcs, u, mean = per_image.pca(x)
    np.testing.assert_allclose(per_image.inverse_pca(pcs, u, mean), x, rtol=1e-10)
    cov = np.cov(np.asarray(pcs).reshape(-1, 4).T)
    np.testing.assert_allclose(cov - np.diag(np.diag(cov)), 0, atol=1e-6 * cov.max())
  np.testing.assert_allclose(per_image.spline_upsample(x, RATIO),
                             transform.rescale(x, RATIO, order=3, channel_axis=-1), rtol=1e-10)
  zero = deep.PCAZPNN(2).init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))["params"]
  zero = jax.tree_util.tree_map(jnp.zeros_like, zero)
  wl = np.array([600.0, 700.0, 780.0, 900.0])             # split at band 2: blocks 0-2 and 2-3
  res = per_image.pca_z_pnn(scene["hs_lr"], scene["pan"], wl, jax.random.key(0), ncomponents=2,
                           iterations=2, params=[zero, zero])
  assert res.split == 2 and res.fused.shape == scene["gt"].shape

  def block(b):                                            # PCA, upsample all PCs, inverse
    pcs, u, mean = per_image.pca(b)
    return np.asarray(per_image.inverse_pca(jnp.asarray(per_image.spline_upsample(pcs, RATIO)), u,
                                           mean))

  expect = np.concatenate([block(x[..., :3])[..., :2], block(x[..., 2:])], -1)
  # Two Adam steps (lr 5e-5) move only the zero network's last bias: 1e-3 of the PC scale.
  np.testing.assert_allclose(res.fused, expect, rtol=1e-2, atol=1e-2 * x.max())
