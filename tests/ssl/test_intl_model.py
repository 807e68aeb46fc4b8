"""INTL model pieces: ResNet backbones, projector, registry, augmentations, kNN / linear eval."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral import models
from jspectral.nn import resnet
from jspectral.ssl import intl, protocol
from jspectral.ssl import spectral_transform as st
from tests.conftest import load_pack

PACK = load_pack("intl_parity")


@pytest.mark.parametrize("name, count", [
    ("intl_resnet18_cifar", 20_616_256), ("intl_resnet18_in100", 63_629_888),
    ("intl_resnet50", 174_543_936), ("resnet18_cifar", 11_168_832), ("resnet18", 11_176_512),
    ("resnet50", 23_508_032)])
def test_official_parameter_counts(name, count):
  assert models.param_count_of(name) == count


@pytest.mark.parametrize("f, p, d", [(512, 2048, 2048), (512, 4096, 8192), (2048, 8192, 8192),
                                     (7, 5, 3)])
def test_projector_parameter_formula(f, p, d):
  shapes = jax.eval_shape(lambda: intl.Projector(p, d).init(
      jax.random.key(0), jnp.zeros((2, f)), train=False))
  assert models.param_count(shapes) == f * p + 4 * p + p * p + p * d + d


def _intermediate_shapes(module, size):
  def run():
    return module.init_with_output(jax.random.key(0), jnp.zeros((2, size, size, 3)), train=False,
                                   capture_intermediates=True)
  out, variables = jax.eval_shape(run)
  inter = variables["intermediates"]
  return out.shape, {k: inter[k]["__call__"][0].shape[1:3] for k in inter if k.startswith("layer")}


def test_cifar_resnet18_feature_map_sizes_keep_the_extra_padding():
  out, maps = _intermediate_shapes(resnet.ResNet18Cifar(), 32)
  assert out == (2, 512)
  assert [maps[f"layer{i}_1"] for i in range(1, 5)] == [(34, 34), (17, 17), (9, 9), (5, 5)]
  _, maps = _intermediate_shapes(resnet.ResNet18Cifar(extra_pad=False), 32)
  assert maps["layer4_1"] == (4, 4)


@pytest.mark.parametrize("size, final", [(224, (7, 7)), (96, (3, 3))])
def test_resnet50_feature_map_sizes(size, final):
  out, maps = _intermediate_shapes(resnet.ResNet50(), size)
  assert out == (2, 2048) and maps["layer4_2"] == final


def test_cifar_stem_layer1_parity():
  case = "cifar_r18_stem_layer1"
  module = resnet.ResNet18Cifar()
  x = jnp.asarray(PACK[f"{case}/input"]).transpose(0, 2, 3, 1)
  variables = _filled(module, x)
  official = resnet.variables_from_torch(PACK.state(case))
  for collection in ("params", "batch_stats"):
    for name, tree in official[collection].items():
      assert jax.tree.structure(tree) == jax.tree.structure(variables[collection][name])
      variables[collection][name] = tree
  _, inter = jax.jit(lambda v: module.apply(v, x, train=False, capture_intermediates=True,
                                            mutable=["intermediates"]))(variables)
  out = inter["intermediates"]["layer1_1"]["__call__"][0]
  ref = PACK[f"{case}/output"].transpose(0, 2, 3, 1)
  np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_intl_projector_parity():
  case = "intl_projector"
  config = PACK.config(case)
  state = {f"projection.{k}": v for k, v in PACK.state(case).items()}
  official = intl.variables_from_torch(state)
  params, stats = official["params"]["projector"], official["batch_stats"]["projector"]
  projector = intl.Projector(config["projection_size"], config["emb"])
  h = [jnp.asarray(PACK[f"{case}/input_h{i}"]) for i in range(2)]

  def loss(p):
    zs = [projector.apply({"params": p, "batch_stats": stats}, x, train=True,
                          mutable=["batch_stats"])[0] for x in h]
    return st.intl_loss(zs, config["beta"], config["iters"], "samples")[0]

  value, grads = jax.jit(jax.value_and_grad(loss))(params)
  np.testing.assert_allclose(value, PACK[f"{case}/loss"], rtol=1e-5)
  ref = intl.variables_from_torch({f"projection.{k}": v for k, v in
                                   PACK.state(case, "grad/").items()})["params"]["projector"]
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    r = ref
    for key in path:
      r = r[key.key]
    np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4 * float(np.abs(r).max()))


def _filled(module, x):
  """Deterministic, non-trivial variables of ``module`` without running the (slow) random init."""
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), x, train=False))
  return jax.tree.map(
      lambda s: (0.5 + 0.3 * np.cos(np.arange(np.prod(s.shape)))).reshape(s.shape)
      .astype(np.float32), shapes)


def _to_torch(variables, prefix):
  """Inverse of the converters, for a round trip: flax variables -> official state_dict names."""
  out = {}
  for collection in ("params", "batch_stats"):
    for path, value in jax.tree_util.tree_leaves_with_path(variables[collection]):
      names = [k.key for k in path]
      leaf = {"kernel": "weight", "scale": "weight", "bias": "bias", "mean": "running_mean",
              "var": "running_var"}[names[-1]]
      value = np.asarray(value)
      if names[0] == "projector":
        layer = int(names[1][-1])
        index = 3 * layer + (0 if names[1].startswith("linear") else 1)
        out[f"{prefix}projection.{index}.{leaf}"] = value.T if value.ndim == 2 else value
        continue
      parts = []
      for n in names[1:-1]:
        if n.startswith("layer"):
          parts += n.split("_")
        elif n.startswith("downsample"):
          parts += ["downsample", "0" if n.endswith("conv") else "1"]
        else:
          parts.append(n)
      out[f"{prefix}backbone.{'.'.join(parts)}.{leaf}"] = (
          value.transpose(3, 2, 0, 1) if value.ndim == 4 else value)
  return out


def test_from_torch_round_trip():
  module = intl.INTLNet(resnet.ResNet(stage_sizes=(1, 2, 1, 1), width=4, stem="cifar"),
                        intl.Projector(12, 10))
  x = jax.random.normal(jax.random.key(1), (3, 16, 16, 3))
  variables = _filled(module, x)
  built, converted = models.from_torch("intl_resnet18_cifar", _to_torch(variables, "module."))
  assert built.backbone.stage_sizes == (1, 2, 1, 1) and built.backbone.width == 4
  assert (built.projector.hidden, built.projector.features) == (12, 10)
  apply = jax.jit(lambda v: module.apply(v, x, train=False)[0])
  assert jax.tree.structure(converted) == jax.tree.structure(variables)
  np.testing.assert_allclose(apply(converted), apply(variables), rtol=1e-5, atol=1e-6)


def test_torchvision_resnet_from_torch_round_trip_drops_the_classifier():
  module = resnet.ResNet(stage_sizes=(1, 1, 2, 1), block_cls=resnet.Bottleneck, width=4,
                         zero_init_residual=True)
  x = jax.random.normal(jax.random.key(2), (2, 40, 40, 3))
  variables = _filled(module, x)
  wrapped = {"backbone": variables["params"]}, {"backbone": variables["batch_stats"]}
  state = {k.replace("backbone.", "", 1): v for k, v in _to_torch(
      {"params": wrapped[0], "batch_stats": wrapped[1]}, "module.").items()}
  state.update({"module.fc.weight": np.ones((10, 16)), "module.fc.bias": np.zeros(10)})
  built, converted = models.from_torch("resnet50", {"state_dict": state})
  assert (built.stage_sizes, built.width, built.stem) == ((1, 1, 2, 1), 4, "imagenet")
  assert built.block_cls is resnet.Bottleneck and "fc" not in converted["params"]
  apply = jax.jit(lambda v: module.apply(v, x, train=False))
  np.testing.assert_allclose(apply(converted), apply(variables), rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="conv1.weight"):
    resnet.from_torch({"layer1.0.conv1.weight": np.ones((4, 4, 1, 1))})


@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
def test_crop_resampling_matches_pil(interpolation):
  from PIL import Image

  rng = np.random.default_rng(0)
  image = rng.uniform(size=(40, 36)).astype(np.float32)
  top, left, height, width, out = 3, 5, 30, 27, 11             # shrink: the kernel is stretched
  rows = intl._resample_matrix(top, height, 40, out, interpolation)
  cols = intl._resample_matrix(left, width, 36, out, interpolation)
  ours = np.asarray(rows @ image @ cols.T)
  pil = Image.fromarray(image, mode="F").resize(
      (out, out), {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}[interpolation],
      box=(left, top, left + width, top + height))
  np.testing.assert_allclose(ours, np.asarray(pil), atol=2e-5)
  with pytest.raises(ValueError, match="interpolation"):
    intl.ViewAugment(interpolation="nearest")


def test_augmentations_identity_and_determinism():
  images = jax.random.uniform(jax.random.key(0), (4, 12, 10, 3))
  plain = intl.ViewAugment(crop_size=12, scale=(1.0, 1.0), ratio=(1.0, 1.0),
                           jitter_prob=0.0, gray_prob=0.0, flip_prob=0.0, mean=(0.0,) * 3,
                           std=(1.0,) * 3)
  square = jax.random.uniform(jax.random.key(0), (4, 12, 12, 3))
  view = intl.augment_views(jax.random.key(1), square, [plain])[0]
  np.testing.assert_allclose(view, square, atol=1e-5)  # whole-image crop at the same size
  flipped = intl.augment_views(jax.random.key(1), square,
                               [intl.ViewAugment(**{**plain.__dict__, "flip_prob": 1.0})])[0]
  np.testing.assert_allclose(flipped, square[:, :, ::-1], atol=1e-5)
  views = intl.cifar_views(crop_size=8)
  a = jax.jit(intl.augment_views, static_argnums=2)(jax.random.key(2), images, views)
  b = jax.jit(intl.augment_views, static_argnums=2)(jax.random.key(2), images, views)
  c = jax.jit(intl.augment_views, static_argnums=2)(jax.random.key(3), images, views)
  assert a[0].shape == (4, 8, 8, 3) and len(a) == 2
  np.testing.assert_array_equal(a[1], b[1])
  assert float(jnp.abs(a[0] - c[0]).max()) > 0.1
  with pytest.raises(ValueError, match="images"):
    intl.augment_views(jax.random.key(0), images[..., :1], views)


def test_colour_ops_match_closed_forms():
  rgb = jax.random.uniform(jax.random.key(4), (5, 5, 3))
  np.testing.assert_allclose(intl._hsv_to_rgb(*intl._rgb_to_hsv(rgb)), rgb, atol=1e-5)
  # u[4:8] increasing -> identity order; factors 1 and hue 0 -> unchanged image.
  u = jnp.asarray([0.5, 0.5, 0.5, 0.5, 0.1, 0.2, 0.3, 0.4])
  np.testing.assert_allclose(intl._color_jitter(u, rgb, intl.ViewAugment()), rgb, atol=1e-5)


def test_knn_parity_and_tie_rule():
  case = "knn_k5"
  acc = protocol.knn_accuracy(PACK[f"{case}/x_train"], PACK[f"{case}/y_train"],
                                PACK[f"{case}/x_test"], PACK[f"{case}/y_test"], k=5)
  assert acc == float(PACK[f"{case}/accuracy"])
  # Two votes for label 3, two for label 1, one for 2: the tie goes to the smaller label.
  x_train = np.asarray([[0.0], [0.1], [0.2], [0.3], [0.4], [5.0]], np.float32)
  y_train = np.asarray([3, 1, 3, 1, 2, 0], np.int32)
  pred = protocol.knn_predict(x_train, y_train, np.zeros((1, 1), np.float32), k=5,
                                num_classes=4)
  assert int(pred[0]) == 1
  with pytest.raises(ValueError, match="k"):
    protocol.knn_accuracy(x_train, y_train, x_train, y_train, k=7)


def test_cosine_knn_and_linear_probe_separate_clusters():
  rng = np.random.default_rng(0)
  centres = rng.normal(size=(3, 6)) * 4
  y = np.repeat(np.arange(3), 40).astype(np.int32)
  x = (centres[y] + rng.normal(size=(120, 6))).astype(np.float32)
  assert protocol.knn_accuracy(x[::2], y[::2], x[1::2], y[1::2], metric="cosine") > 0.9
  result = protocol.linear_probe(x[::2], y[::2], x[1::2], y[1::2], key=jax.random.key(0))
  assert result["top1"] > 0.9 and result["top5"] == 1.0
