"""LoLA-SpecViT: parameter counts, official-weight parity, LoRA identities, windows, LR trace."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.testing import assert_allclose

from jspectral import models, train
from jspectral.classification import lola_specvit as lola
from jspectral.train import loop
from jspectral.train.optim import path_name
from tests.conftest import load_pack


@pytest.fixture(scope="module")
def pack():
  return load_pack("lola_parity")


def split_counts(num_classes):
  module = models.create("lola_specvit", num_classes=num_classes)
  x = jax.ShapeDtypeStruct((1, 15, 15, 15), jnp.float32)
  shapes = jax.eval_shape(lambda k, x: module.init({"params": k, "dropout": k}, x),
                          jax.random.PRNGKey(0), x)
  leaves = jax.tree_util.tree_leaves_with_path(shapes["params"])
  trainable = sum(int(np.prod(v.shape)) for p, v in leaves
                  if re.search(lola.LORA_TRAINABLE, path_name(p)))
  return models.param_count(shapes), trainable


@pytest.mark.parametrize("num_classes, total, trainable", [
    (9, 254_639_541, 73_586_832),    # WHU-Hi LongKou
    (22, 254_644_754, 73_587_040),   # WHU-Hi HongHu
    (16, 254_642_348, 73_586_944),   # Salinas
])
def test_official_parameter_counts(num_classes, total, trainable):
  assert split_counts(num_classes) == (total, trainable)


def test_registry_counts_the_default_without_allocating():
  assert models.param_count_of("lola_specvit") == 254_639_541


def test_mini_parity_with_official_weights(pack):
  module, variables = models.from_torch("lola_specvit_mini", pack.state("mini"))
  assert models.param_count(variables) == 297_733
  x = pack["mini/x_normalised"].transpose(0, 2, 3, 1)  # (N, bands, H, W) -> bands-last
  spectral = module.clone(axis_order="spectral")
  assert_allclose(lola.normalise_patches(pack["mini/x_raw"].transpose(0, 2, 3, 1), "spectral"),
                  x, atol=1e-5)
  logits, inter = jax.jit(lambda v, x: spectral.apply(
      v, x, capture_intermediates=True, mutable=["intermediates"]))(variables, x)
  assert_allclose(logits, pack["mini/logits"], atol=1e-4)
  inter = inter["intermediates"]
  assert_allclose(inter["levels_0_0"]["__call__"][0],
                  pack["mini/intermediate/level0_block0_out"], atol=1e-4)
  assert_allclose(inter["levels_1_0"]["__call__"][0],
                  pack["mini/intermediate/level1_block0_out"], atol=1e-4)
  assert_allclose(inter["levels_2_0"]["__call__"][0],
                  pack["mini/intermediate/level2_block0_out"], atol=1e-4)
  assert_allclose(inter["patch_embed_0"]["__call__"][0].shape, (3, 7, 7, 16))


def test_relative_position_index_matches_the_official_buffer(pack):
  np.testing.assert_array_equal(lola.relative_position_index(7),
                                pack["mini/buffer/levels.0.0.attn.relative_position_index"])


def test_gated_lora_and_swiglu_parity(pack):
  x = pack["lora/x"]
  params = lola.convert_torch_state(pack.state("lora_gated"))["params"]
  y = lola.LoRALinear(5, rank=2, alpha=4.0).apply({"params": params}, x)
  assert_allclose(y, pack["lora/gated_y"], atol=1e-5)
  params = lola.convert_torch_state(pack.state("swiglu"))["params"]
  assert_allclose(lola.SwiGLU(7, 5).apply({"params": params}, x), pack["swiglu/y"], atol=1e-5)


def test_lora_merge_identity_and_zero_adapters():
  layer = lola.LoRALinear(5, rank=2, alpha=4.0, gate_residual=False)
  x = jax.random.normal(jax.random.PRNGKey(0), (4, 6))
  params = layer.init(jax.random.PRNGKey(1), x)["params"]
  merged = lola.merge_lora(params, alpha=4.0, rank=2)
  assert_allclose(layer.apply({"params": params}, x), x @ merged["kernel"] + merged["bias"],
                  atol=1e-6)
  gated = lola.LoRALinear(5, rank=2, alpha=4.0)
  gp = gated.init(jax.random.PRNGKey(2), x)["params"]
  zeroed = {**gp, **{k: jax.tree.map(jnp.zeros_like, gp[k])
                     for k in ("lora_up", "lora_gate", "lora_residual")}}
  base = x @ gp["linear"]["kernel"] + gp["linear"]["bias"]
  assert_allclose(gated.apply({"params": zeroed}, x), base, atol=1e-6)


def test_trainable_mask_selects_exactly_the_adapters():
  from jspectral.train import trainable_labels
  module = models.create("lola_specvit_mini")
  params = jax.eval_shape(  # the labels depend on the tree's paths only: nothing is allocated
      lambda: module.init({"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(0)},
                          jnp.zeros((1, 15, 15, 15))))["params"]
  labels = jax.tree_util.tree_leaves_with_path(trainable_labels(lola.LORA_TRAINABLE)(params))
  trained = {path_name(p).rsplit("/", 1)[0].rsplit("/", 1)[-1] for p, v in labels if v == "train"}
  assert trained == {"lora_down", "lora_up", "lora_gate", "lora_residual"}


def test_window_partition_round_trip_and_padding():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 14, 7, 3))
  windows = lola.window_partition(x, 7)
  assert windows.shape == (4, 49, 3)
  assert_allclose(lola.window_reverse(windows, 7, 14, 7), x)
  padded = lola.pad_to_windows(jnp.ones((1, 4, 4, 2)), 7)
  assert padded.shape == (1, 7, 7, 2) and int((padded[..., 0] == 0).sum()) == 33
  with pytest.raises(ValueError, match="multiple of the window"):
    lola.window_partition(jnp.ones((1, 5, 7, 1)), 7)


def test_official_lr_trace():
  schedule = lola.official_lr_schedule(2e-5, batches_per_epoch=4)
  used = [float(schedule(4 * epoch)) for epoch in (0, 1, 2, 3, 4, 5, 6, 11, 31, 71)]
  assert_allclose(used, [4e-6, 8e-6, 1.2e-5, 1.6e-5, 2e-5, 2e-5, 8.2823e-6, 1.99342e-5,
                         1.99835e-5, 1.99959e-5], rtol=2e-5)
  assert_allclose(float(schedule(21)), 1.05e-5, rtol=1e-6)  # first scheduled step: half-way


def test_official_lr_trace_with_gradient_accumulation():
  # torch AdamW + CosineAnnealingWarmRestarts run as the official loop does (5 micro-batches per
  # epoch, accumulation 2: the 5th never steps): the lr of each of the 24 updates of 12 epochs
  schedule = lola.official_lr_schedule(2e-5, batches_per_epoch=5, accumulation=2)
  assert_allclose([float(schedule(s)) for s in (0, 2, 8, 9, 10, 11, 12, 13, 23)],
                  [4e-6, 8e-6, 2e-5, 2e-5, 1.05e-5, 9.3093342811e-06, 7.5643385534e-06,
                   6.4550967301e-06, 1.9771209238e-05], rtol=1e-6)
  assert lola.official_steps_per_epoch(5_412, 64, 2) == 85   # Salinas 10 %: ceil(5412/32) // 2
  with pytest.raises(ValueError, match="accumulation"):
    lola.official_lr_schedule(2e-5, batches_per_epoch=1, accumulation=2)


def test_cyclic_lora_schedule_restarts():
  schedule = lola.cyclic_lora_schedule(1e-4, t0=10, t_mult=2, eta_min=0.0, lora_scale=2.0)
  assert_allclose([float(schedule(s)) for s in (0, 5, 10, 20, 30)], [2e-4, 1e-4, 2e-4, 1e-4, 2e-4],
                  rtol=1e-5)


# The mini model cut to one level (no patch merging): every parameter kind (spectral convs,
# BatchNorm, LoRA attention and SwiGLU, head) in a third of the compile time.
ONE_LEVEL = dict(depths=(1,), heads=(2,))


def test_axis_orders_differ_and_bad_input_is_refused():
  # random weights: the released mini weights give nearly input-independent logits
  module = models.create("lola_specvit_mini", **ONE_LEVEL)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 15, 15, 15))
  variables = jax.jit(module.init)(
      {"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(0)}, x)
  apply = jax.jit(lambda v, x, order: module.clone(axis_order=order).apply(v, x),
                  static_argnums=2)
  assert not np.allclose(apply(variables, x, "official"), apply(variables, x, "spectral"),
                         atol=1e-3)
  with pytest.raises(ValueError, match="x: expected patches"):
    module.apply(variables, jnp.zeros((2, 15, 15, 20)))
  with pytest.raises(ValueError, match="axis_order"):
    module.clone(axis_order="rows").apply(variables, x)
  with pytest.raises(ValueError, match="spatial_size == in_channels"):
    models.create("lola_specvit_mini", in_channels=20).init(
        {"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(0)},
        jnp.zeros((1, 15, 15, 20)))


@pytest.mark.slow  # ~25 s: a fit
def test_lora_only_training_through_fit_leaves_the_backbone_untouched(tmp_path):
  from experiments.configs import classify_lola
  from jspectral.classification.tasks import LoLATask

  rng = np.random.default_rng(0)
  x = rng.normal(size=(8, 15, 15, 15)).astype(np.float32)
  y = rng.integers(0, 3, 8)
  module = models.create("lola_specvit_mini", num_classes=3, **ONE_LEVEL)
  task = LoLATask(module, x, y, x, y)
  config = classify_lola.get_config("smoke").train
  config.update(total_steps=3, batch_size=4, eval_every=0, progress=False)
  # fit's own build of init (no backend optimisations: values can differ in the last bit)
  start = jax.jit(task.init, compiler_options=loop._RUN_ONCE)(jax.random.PRNGKey(config.seed),
                                                              {"x": x[:4]})
  result = train.fit(task, config, tmp_path)
  changed = {path_name(p): not np.array_equal(a, b) for (p, a), b in zip(
      jax.tree_util.tree_leaves_with_path(start[0]), jax.tree.leaves(result.params), strict=True)}
  assert all(v == bool(re.search(lola.LORA_TRAINABLE, k)) for k, v in changed.items()), [
      k for k, v in changed.items() if v != bool(re.search(lola.LORA_TRAINABLE, k))]
  assert not np.array_equal(jax.tree.leaves(start[1])[0], jax.tree.leaves(result.model_state)[0])
