"""rho-PNN's driver as the official code runs it: stage-A steps, tiling, fuse on any size.

``parity/rho_pnn_stage_a_steps.npz`` was made by running giu-guarino/rho-PNN 633a13d's
``utils.train`` (torch 2.13 CPU, float32; ``model_ensemble`` shortened to 2 copies x 1 epoch: it
is a no-op either way) for one epoch over three fixed batches of two 90-px tiles, from an
``R_PNN`` whose last conv was scaled by 0.05 (bias 0), with ``spec_limits = [1.5, 2.0]`` so the
switch engages; the per-batch interpolator / output spectral losses, the spatial losses, the
parameters after each ``Adam.step`` and the EMA weights after each update were recorded
(docs/parity.md, section pansharp).
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral.pansharpening import rho_pnn

PARITY = pathlib.Path(__file__).parent / "parity"


def _variables(pack, prefix):
  state = {k[len(prefix):]: pack[k] for k in pack.files if k.startswith(prefix)}
  return rho_pnn.rpnn_from_torch(state)[1]["params"]


def _assert_tree_close(tree, expected, rtol, atol=0.0):
  for a, e in zip(jax.tree_util.tree_leaves(tree), jax.tree_util.tree_leaves(expected),
                  strict=True):
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)


def test_stage_a_steps_match_official():
  pack = np.load(PARITY / "rho_pnn_stage_a_steps.npz")
  assert float(pack["a1_max_change"]) == 0.0           # the official A1 ensemble is a no-op
  config = rho_pnn.RhoPNNConfig(gamma=2.0, gamma_l=0.75)  # limits (1.5, 2.0) as generated
  x = np.transpose(pack["x"], (0, 1, 3, 4, 2))          # (3 batches, 2, 90, 90, 2)
  lr = np.transpose(pack["lr"], (0, 1, 3, 4, 2))
  init = _variables(pack, "init/")
  atol = 4 * float(np.finfo(np.float32).eps) * max(
      float(np.abs(w).max()) for w in jax.tree_util.tree_leaves(init))
  with jax.enable_x64(True):
    step, optimizer = rho_pnn.make_pretrain_step(config)
    params, opt_state = init, optimizer.init(init)
    beta, active, ema = jnp.float32(0.0), jnp.asarray(False), None
    for k in range(3):
      params, opt_state, beta, active, (ls, lt) = step(params, opt_state, beta, active, x[k],
                                                       lr[k])
      np.testing.assert_allclose(float(ls), pack["loss_spec"][k], rtol=1e-5)
      np.testing.assert_allclose(float(lt), pack["loss_struct"][k], rtol=1e-6)
      assert bool(active) and float(beta) == 0.5
      ema = params if ema is None else rho_pnn.ema_step(ema, params, config.ema_decay)
      # Updates (~1e-5) are compared to 4 float32 ulps of the weights (the stored parameters are
      # float32 in both codes): each update to ~0.1 %, the weights to 1e-5 relative.
      expected = _variables(pack, f"delta{k + 1}/")
      _assert_tree_close(jax.tree_util.tree_map(lambda a, b: a - b, params, init), expected,
                         1e-5, atol)
      _assert_tree_close(params, jax.tree_util.tree_map(jnp.add, init, expected), 1e-5, 1e-10)
      _assert_tree_close(jax.tree_util.tree_map(lambda a, b: a - b, ema, init),
                         _variables(pack, f"ema{k + 1}/"), 1e-5, atol)
  np.testing.assert_allclose(
      rho_pnn.spectral_loss(jnp.asarray(x[0][..., :1]), jnp.asarray(lr[0])), pack["min_spec"][0],
      rtol=1e-5)


def test_patchify_and_tiling_order():
  image = np.arange(192 * 192, dtype=np.float32).reshape(1, 192, 192, 1)
  lr = image[:, 3::6, 3::6]
  x, tiles_lr = rho_pnn.pretrain_tiles(lr, image, image, 90, 6)
  # 192 // 90 = 2 tiles per axis, row-major, the 12-px remainder dropped (official patchify).
  assert x.shape == (4, 90, 90, 2) and tiles_lr.shape == (4, 15, 15, 1)
  for t, (r, c) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
    rows, cols = slice(90 * r, 90 * (r + 1)), slice(90 * c, 90 * (c + 1))
    np.testing.assert_array_equal(x[t, ..., 0], image[0, rows, cols, 0])
    np.testing.assert_array_equal(tiles_lr[t], lr[0, 15 * r:15 * (r + 1), 15 * c:15 * (c + 1)])
  # The official grid count comes from the PAN's height for both axes.
  wide = np.zeros((1, 100, 200, 1), np.float32)
  assert rho_pnn.pretrain_tiles(wide[:, ::6, ::6], wide, wide, 90, 6)[0].shape[0] == 1
  with pytest.raises(ValueError, match="does not fit"):
    rho_pnn.patchify(np.zeros((1, 200, 100, 1)), 90, 2)
  # Stage B (torch.split order): tile 1 of a 600x600 band is the top-right one.
  band = np.arange(600 * 600, dtype=np.float32).reshape(1, 600, 600, 1)
  tiles = rho_pnn.tile(band, 300)
  np.testing.assert_array_equal(tiles[1], band[0, :300, 300:])
  np.testing.assert_array_equal(tiles[2], band[0, 300:, :300])


def test_postprocess():
  band = jnp.asarray([-0.1, 0.0, 0.5, 0.99999, 1.0, 1.2, 1.5 / 65536, 2.5 / 65536])
  out = np.asarray(rho_pnn.postprocess(band))
  assert out.dtype == np.uint16
  # x 2^16, round half to even, clip to [0, 2^16]; 65536 wraps to 0 in uint16 as in the official.
  np.testing.assert_array_equal(out, [0, 0, 32768, 65535, 0, 0, 2, 2])


def _scene(h, w, rng):
  lr = rng.uniform(2000, 9000, (h // 6, w // 6, 1))
  up = np.kron(lr, np.ones((6, 6, 1)))
  up = np.pad(up, ((0, h - up.shape[0]), (0, w - up.shape[1]), (0, 0)), mode="edge")
  return lr, up, up[..., 0] + rng.normal(0, 200, (h, w))


@pytest.mark.parametrize("shape", [(192, 192), (150, 170)])
def test_fuse_any_scene_size(shape):
  lr, up, pan = _scene(*shape, np.random.default_rng(0))
  config = rho_pnn.RhoPNNConfig(pretrain_epochs=1)
  result = rho_pnn.fuse(lr, up, pan, config, max_iter=[1])
  assert result.fused.shape == shape + (1,) and result.fused.dtype == np.float32
  assert np.isfinite(result.fused).all() and int(result.iterations[0]) == 1
  # The output is close to the upsampled band (residual network, one step).
  assert np.abs(result.fused[..., 0] * 65536 - up[..., 0]).mean() < 0.5 * up.mean()
  with pytest.raises(ValueError, match="pan: expected spatial size"):
    rho_pnn.fuse(lr, up[:-6], pan[:-6], config)


def test_ensemble_flag():
  lr, up, pan = _scene(96, 96, np.random.default_rng(1))
  args = [jnp.asarray(a, jnp.float32)[None] / 65536 for a in (lr, up, pan[..., None])]
  module = rho_pnn.RPNN()
  init = module.init(jax.random.key(0), jnp.zeros((1, 8, 8, 2)))["params"]
  config = rho_pnn.RhoPNNConfig(pretrain_epochs=0, ensemble_copies=2, ensemble_epochs=1,
                                learning_rate=1e-3)
  official, _, engaged = rho_pnn.pretrain(init, *args, config, jax.random.key(1))
  # "official": A1 leaves the weights unchanged (the released code's copies never update them).
  _assert_tree_close(official, init, 0.0)
  assert not engaged
  working, _, _ = rho_pnn.pretrain(init, *args, config.__class__(
      **{**config.__dict__, "ensemble": "working"}), jax.random.key(1))
  change = max(float(jnp.abs(a - b).max()) for a, b in zip(
      jax.tree_util.tree_leaves(working), jax.tree_util.tree_leaves(init), strict=True))
  assert change > 1e-4          # averaged copies trained with L_spec moved away from the start
  with pytest.raises(ValueError, match="config.ensemble"):
    rho_pnn.pretrain(init, *args, config.__class__(**{**config.__dict__, "ensemble": "bag"}),
                     jax.random.key(1))
