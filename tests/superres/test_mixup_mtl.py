"""Multi-task Spectral Mixup SR: parity with kli8996/HSISR (hsi_sr_mixup_parity pack), parameter
counts, band grouping, hybrid loss, Spectral Mixup, consistency loss, conversion and LR schedule."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral import models
from jspectral.data import mixup
from jspectral.superres import mixup_mtl as M
from jspectral.superres.losses import hybrid_loss, hybrid_loss_terms
from tests.conftest import load_pack

PACK = "hsi_sr_mixup_parity"


@pytest.fixture(scope="module")
def pack():
  return load_pack(PACK)


@pytest.fixture(scope="module")
def tiny_x4(pack):
  """The ``model_x4`` case's model (C=11, n_subs 4, n_ovls 1, F=24) with the official weights."""
  module, variables = models.from_torch("mixup_mtl", pack.state("model_x4"))
  config = pack.config("model_x4")
  module = module.clone(n_ovls=config["n_ovls"])
  assert (module.bands, module.scale, module.n_subs, module.features) == (
      config["n_colors"], config["n_scale"], config["n_subs"], config["n_feats"])
  assert models.param_count(variables) == config["params"]
  return module, variables


def _nhwc(x):
  return np.asarray(x).transpose(0, 2, 3, 1)


def test_band_groups_and_counts(pack):
  assert M.band_groups(31, 8, 2) == [(0, 8), (6, 14), (12, 20), (18, 26), (23, 31)]
  groups = M.band_groups(128, 8, 2)
  assert len(groups) == 21 and groups[-1] == (120, 128)
  counts = pack.json("counts/config")["c128_x8_chikusei"]
  assert [g[0] for g in groups] == counts["start"] and [g[1] for g in groups] == counts["end"]
  config = pack.config("model_x4")
  groups = M.band_groups(11, 4, 1)
  assert [g[0] for g in groups] == config["start_idx"] and [g[1] for g in groups] == config[
      "end_idx"]
  np.testing.assert_array_equal(M.group_counts(11, 4, 1), [1, 1, 1, 2, 1, 1, 2, 2, 2, 2, 1])
  np.testing.assert_array_equal(M.group_counts(31, 8, 2).sum(), 5 * 8)


def test_model_x4_parity_spectral_group_mean_and_rgb(pack, tiny_x4):
  module, variables = tiny_x4
  out, inter = module.apply(variables, _nhwc(pack["model_x4/x"]), _nhwc(pack["model_x4/lms"]),
                            mutable=["intermediates"])
  np.testing.assert_allclose(out, _nhwc(pack["model_x4/output_spectral"]), rtol=0, atol=1e-5)
  np.testing.assert_allclose(inter["intermediates"]["group_mean"][0],
                             _nhwc(pack["model_x4/group_mean"]), rtol=0, atol=1e-5)
  rgb = module.apply(variables, _nhwc(pack["model_x4/x_rgb"]), _nhwc(pack["model_x4/lms_rgb"]),
                     "rgb")
  np.testing.assert_allclose(rgb, _nhwc(pack["model_x4/output_rgb"]), rtol=0, atol=1e-5)


def test_model_x8_parity(pack):
  module, variables = models.from_torch("mixup_mtl", pack.state("model_x8"))
  config = pack.config("model_x8")
  assert module.scale == 8 and module.n_ovls == config["n_ovls"]
  assert models.param_count(variables) == config["params"]
  out = module.apply(variables, _nhwc(pack["model_x8/x"]), _nhwc(pack["model_x8/lms"]))
  np.testing.assert_allclose(out, _nhwc(pack["model_x8/output_spectral"]), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name, key", [("mixup_mtl", "c31_x4_default"),
                                       ("mixup_mtl_x8", "c31_x8"),
                                       ("mixup_mtl_chikusei", "c128_x8_chikusei")])
def test_param_counts(pack, name, key):
  official = pack.json("counts/config")[key]
  module = models.create(name)
  shapes = jax.eval_shape(
      lambda: module.init(jax.random.key(0), **models._materialise(
          models.spec(name).example_inputs(module))))
  assert models.param_count(shapes) == official["total"] == models.param_count_of(name)
  for part, count in official["parts"].items():
    assert models.param_count({"params": shapes["params"][part]}) == count, part


def test_hybrid_loss_parity_float64(pack):
  with jax.enable_x64(True):
    pred, gt = (jnp.asarray(_nhwc(pack[f"hybrid_loss/{k}"])) for k in ("pred", "gt"))
    terms = hybrid_loss_terms(pred, gt)
    for name in ("l1", "tv_spatial", "tv_spectral"):
      np.testing.assert_allclose(terms[name], pack[f"hybrid_loss/{name}"], rtol=1e-10)
    np.testing.assert_allclose(hybrid_loss(pred, gt), pack["hybrid_loss/loss"], rtol=1e-10)
    grad = jax.grad(hybrid_loss)(pred, gt)
    np.testing.assert_allclose(grad, _nhwc(pack["hybrid_loss/grad_pred"]), rtol=0, atol=1e-10)


def test_spectral_mixup_parity(pack):
  r = mixup.normalise_mixing(jnp.asarray(pack["spectral_mixup/R_raw"], jnp.float32))
  np.testing.assert_allclose(r, pack["spectral_mixup/R"], rtol=1e-6)
  np.testing.assert_allclose(jnp.mean(jnp.sum(r, axis=0)), 1.0, rtol=1e-6)
  for name in ("x", "lms", "gt"):
    mixed = mixup.mix_bands(_nhwc(pack[f"spectral_mixup/{name}"]), r)
    np.testing.assert_allclose(mixed, _nhwc(pack[f"spectral_mixup/{name}_mix"]), atol=1e-6)


def test_spectral_mixup_same_matrix_for_all_cubes_and_keyed():
  key = jax.random.key(0)
  cubes = [jax.random.uniform(k, (2, s, s, 6)) for k, s in zip(jax.random.split(key, 3),
                                                                (3, 12, 12), strict=True)]
  (x, lms, gt), r = mixup.spectral_mixup(jax.random.key(1), *cubes)
  assert r.shape == (6, 6) and bool(jnp.all(r >= 0))
  np.testing.assert_allclose(jnp.mean(r.sum(0)), 1.0, rtol=1e-6)
  for mixed, cube in zip((x, lms, gt), cubes, strict=True):
    np.testing.assert_allclose(mixed, 0.5 * cube + 0.5 * cube @ r, atol=1e-6)
  (_, _, gt_again), r_again = mixup.spectral_mixup(jax.random.key(1), *cubes)
  np.testing.assert_array_equal(r_again, r)
  assert not np.allclose(mixup.spectral_mixup(jax.random.key(2), cubes[0])[1], r)


def test_mixup_commutes_with_spatial_degradation():
  gt = jax.random.uniform(jax.random.key(3), (1, 16, 16, 5))
  r = mixup.mixing_matrix(jax.random.key(4), 5)
  down = lambda c: jax.image.resize(c, (1, 4, 4, 5), "bicubic", antialias=True)
  np.testing.assert_allclose(down(mixup.mix_bands(gt, r)), mixup.mix_bands(down(gt), r),
                             atol=1e-6)


def test_consistency_loss_parity(pack, tiny_x4):
  module, variables = tiny_x4
  x, lms = _nhwc(pack["consistency/x"]), _nhwc(pack["consistency/lms"])
  matrix = jnp.asarray(pack["consistency/M"])
  np.testing.assert_allclose(M.project_bands(x, matrix), _nhwc(pack["consistency/x_cvt"]),
                             atol=1e-6)
  np.testing.assert_allclose(M.project_bands(lms, matrix), _nhwc(pack["consistency/lms_cvt"]),
                             atol=1e-6)
  loss, grads = jax.jit(jax.value_and_grad(
      lambda p: M.consistency_loss(module, {"params": p}, x, lms, matrix)))(variables["params"])
  np.testing.assert_allclose(loss, pack["consistency/loss"], rtol=1e-5)
  official = pack.state("consistency", prefix="grad/")
  assert len(official) == 8
  for name, grad in official.items():
    node = grads
    for part in name.split(".")[:-1]:
      node = node[part]
    ours = np.asarray(node["kernel"]).transpose(3, 2, 0, 1)
    assert np.abs(ours - grad).max() <= 1e-4 * np.abs(grad).max(), name
    assert np.abs(grad).max() > 0


def test_conversion_matrix_and_projection(pack):
  matrix = jnp.asarray(pack["conversion/matrix_31x8"])
  np.testing.assert_allclose(M.RGB_TO_8CH, pack["conversion/channel_matrix_3x8"], atol=1e-7)
  np.testing.assert_allclose(M.hsi_to_8ch_matrix(matrix[:, [0, 3, 7]]), matrix, atol=1e-6)
  y = M.project_bands(_nhwc(pack["conversion/x"]), matrix)
  np.testing.assert_allclose(y, _nhwc(pack["conversion/y"]), atol=1e-6)


def test_lr_schedule(pack):
  lrs = [M.official_learning_rate(k, 10, 1e-4) for k in range(1, 11)]
  np.testing.assert_allclose(lrs, pack["lr_schedule/lr_per_epoch"], rtol=1e-12)
  with pytest.raises(ValueError, match="epoch"):
    M.official_learning_rate(11, 10)


def test_bad_inputs_raise(tiny_x4):
  module, variables = tiny_x4
  x = jnp.zeros((1, 3, 3, 11))
  with pytest.raises(ValueError, match="lms"):
    module.apply(variables, x, jnp.zeros((1, 9, 9, 11)))
  with pytest.raises(ValueError, match="x: expected"):
    module.apply(variables, jnp.zeros((1, 3, 3, 12)), jnp.zeros((1, 12, 12, 12)))
  with pytest.raises(ValueError, match="modality"):
    module.apply(variables, x, jnp.zeros((1, 12, 12, 11)), "pan")
  with pytest.raises(ValueError, match="scale"):
    M.MultiTaskSR(bands=11, scale=5, n_subs=4, features=8).init(
        jax.random.key(0), jnp.zeros((1, 2, 2, 11)), jnp.zeros((1, 10, 10, 11)))
  with pytest.raises(ValueError, match="n_subs, n_ovls"):
    M.band_groups(6, 8, 2)
  with pytest.raises(ValueError, match="r: expected"):
    mixup.mix_bands(x, jnp.eye(4))
  with pytest.raises(ValueError, match="pred, target"):
    hybrid_loss(jnp.zeros((1, 4, 4, 3)), jnp.zeros((1, 4, 4, 4)))
