"""Training tasks of the toolbox's deep pansharpening methods.

Reference: Ciotola et al., "Hyperspectral Pansharpening: Critical Review, Tools and Future
Perspectives", arXiv 2407.01355; github.com/matciotola/hyperspectral_pansharpening_toolbox
(``<Method>/<Method>.py``, ``<Method>/config.yaml``). Networks live in
:mod:`jspectral.pansharpening.deep`; per-image fitting (priors, zero-shot adaptation) in
:mod:`jspectral.pansharpening.per_image`.

* Supervised reduced-resolution training (HyperPNN, HSpeNet, Hyper-DSNet, DHP-DARN,
  DIP-HyperKite): :class:`SupervisedTask` for :func:`jspectral.train.fit`, with
  :func:`train_config` holding the official loss, optimiser, learning rate, schedule, epochs and
  batch size (:data:`RECIPES`). Data are the toolbox's RR patches divided by 2^16
  (:func:`rr_examples`); DARN and Kite train on per-image priors cached per split.
* R-PNN's optional pre-training: :class:`RPNNPretrainTask` and :func:`rpnn_pretrain_config`.
* The toolbox's released PRISMA weights (its default: ``train: False`` in every
  ``config.yaml``): :func:`released_weights` reads ``<Folder>/weights/PRISMA.tar`` of a toolbox
  checkout (or a ``.npz`` of the same state dict) and converts it with ``deep.MODELS[...]
  .from_torch``.

Official behaviour kept: torch's default initialisation for every conv (uniform
``+-1/sqrt(fan_in)`` weights and biases) unless the method re-initialises (Hyper-DSNet's
truncated-normal fan-in variance scaling on Block2/3 and the attention: the official helper
computes ``x / 10 * 1.28`` but discards it, so the effective scale is 1; Kite's He-normal
``N(0, 2 / (k^2 out))``); Kite's ``Adam(weight_decay=1e-4)`` is torch's coupled L2 (added to the
loss as ``wd / 2 |w|^2``, all parameters); StepLR per epoch / per iteration.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jspectral.metrics import pansharpening as indices
from jspectral.pansharpening import deep, per_image, protocol
from jspectral.train import default_config

NORMALISATION = per_image.NORMALISATION



# ------------------------------------------------------------------------------------------------
# Recipes and initialisation
# ------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Recipe:
  """One method's official training settings (``config.yaml`` and the training function).

  Attributes:
    loss: ``"mse"``, ``"mse_sam"`` (0.9 MSE + 0.1 SAMLoss) or ``"l1"``.
    learning_rate: Adam learning rate.
    epochs: official number of epochs.
    batch_size: official batch size.
    weight_decay: torch Adam's coupled L2 (added to the loss as ``wd / 2 |w|^2``).
    step_epochs: StepLR(step_epochs, 0.1) per epoch; 0: constant.
    prior: per-image prior: ``"dhp"`` (DARN) or ``"dip"`` (Kite); ``None`` for none.
    init: ``"torch"``, ``"hyper_dsnet"`` or ``"he_normal"`` (:func:`.deep.official_init`).
  """

  loss: str                 # "mse", "mse_sam" (0.9 MSE + 0.1 SAMLoss) or "l1"
  learning_rate: float
  epochs: int
  batch_size: int
  weight_decay: float = 0.0  # torch Adam's coupled L2
  step_epochs: int = 0       # StepLR(step_epochs, 0.1) per epoch; 0: constant
  prior: str | None = None   # per-image prior: "dhp" (DARN) or "dip" (Kite)
  init: str = "torch"        # "torch", "hyper_dsnet" or "he_normal"


RECIPES = {
    "hyperpnn": Recipe("mse", 1e-4, 5000, 64),
    "hspenet": Recipe("mse_sam", 1e-4, 4000, 64),
    "hyper_dsnet": Recipe("mse", 1e-4, 5000, 32, init="hyper_dsnet"),
    "darn": Recipe("l1", 1e-3, 1500, 64, prior="dhp"),
    "dip_hyperkite": Recipe("l1", 1e-3, 2500, 2, weight_decay=1e-4, step_epochs=1000, prior="dip",
                            init="he_normal"),
}


def _recipe(name: str) -> Recipe:
  if name not in RECIPES:
    raise ValueError(f"name: expected one of {sorted(RECIPES)}, got {name!r}")
  return RECIPES[name]


def train_config(name: str, num_examples: int, *, epochs: int | None = None,
                 batch_size: int | None = None) -> ml_collections.ConfigDict:
  """The :func:`jspectral.train.fit` config of ``name``'s official recipe.

  An epoch is ``ceil(num_examples / batch)`` steps of the shuffled, repeated stream (the engine
  draws full batches; torch's loader ends each epoch on a short batch). StepLR boundaries stay at
  the official epochs.

  Args:
    name: a key of :data:`RECIPES`.
    num_examples: number of training examples (>= 1).
    epochs: overrides the recipe's epochs (short runs).
    batch_size: overrides the recipe's batch size (capped at ``num_examples``).

  Returns:
    An ``ml_collections.ConfigDict`` (Adam, the recipe's learning rate and step schedule).

  Raises:
    ValueError: if ``name`` is unknown or ``num_examples < 1``.
  """
  recipe = _recipe(name)
  if num_examples < 1:
    raise ValueError(f"num_examples: expected >= 1, got {num_examples}")
  batch = min(batch_size or recipe.batch_size, num_examples)
  per_epoch = math.ceil(num_examples / batch)
  c = default_config()
  c.batch_size = batch
  c.total_steps = (recipe.epochs if epochs is None else epochs) * per_epoch
  c.optimizer.name = "adam"
  c.optimizer.learning_rate = recipe.learning_rate
  if recipe.step_epochs:
    c.schedule.name = "step"
    c.schedule.boundaries = list(range(recipe.step_epochs * per_epoch, c.total_steps,
                                       recipe.step_epochs * per_epoch))
    c.schedule.decay_factor = 0.1
  c.checkpoint_every = max(c.total_steps // 4, 1000)   # and at the last step
  c.log_every = max(min(c.total_steps // 10, 100), 1)
  c.progress = False
  return c


# ------------------------------------------------------------------------------------------------
# Supervised reduced-resolution training
# ------------------------------------------------------------------------------------------------

def rr_examples(scenes: Sequence[dict], name: str, rng: jax.Array | None = None, *,
                ratio: int = 6, prior_iterations: int | None = None,
                prior_kwargs: dict | None = None) -> list[dict[str, np.ndarray]]:
  """Reduced-resolution training examples from scenes in DN, divided by 2^16.

  For DARN / Kite each example also gets its prior (:func:`.per_image.fit_prior`, computed once
  per scene: the official caches the priors of a split).

  Args:
    scenes: dicts with ``pan (H, W, 1)``, ``hs_lr (H / ratio, W / ratio, B)``, ``hs_up (H, W, B)``
      and the RR ground truth ``gt (H, W, B)``, in DN.
    name: a key of :data:`RECIPES` (decides whether a prior is fitted).
    rng: PRNG key of the priors (default ``key(0)``; folded with the scene index).
    ratio: PAN / HS resolution ratio.
    prior_iterations: overrides the prior's official iteration count.
    prior_kwargs: extra keyword arguments of the prior network.

  Returns:
    A list of float32 dicts with the same keys (and ``prior (H, W, B)`` where needed).
  """
  recipe = _recipe(name)
  rng = jax.random.key(0) if rng is None else rng
  out = []
  for i, s in enumerate(scenes):
    ex = {k: np.asarray(s[k], np.float32) / np.float32(NORMALISATION)
          for k in ("pan", "hs_lr", "hs_up", "gt") if k in s}
    if recipe.prior is not None:
      ex["prior"] = np.asarray(per_image.fit_prior(recipe.prior, ex["hs_lr"], ex["pan"],
                                         jax.random.fold_in(rng, i), ratio=ratio,
                                         iterations=prior_iterations,
                                         prior_kwargs=prior_kwargs)[0])
    out.append(ex)
  return out


def _inputs(name: str, batch: dict) -> tuple:
  if name in ("hyperpnn", "hspenet"):
    return batch["pan"], batch["hs_up"]
  if name == "hyper_dsnet":
    return batch["pan"], batch["hs_up"], batch["hs_lr"]
  return batch["pan"], batch["prior"]


class SupervisedTask:
  """:func:`jspectral.train.fit` task of one supervised toolbox network on RR examples.

  Args:
    name: registry name (:data:`RECIPES`).
    examples: :func:`rr_examples` output (normalised, with priors where needed).
    eval_examples: scored by :meth:`evaluate` (RR ERGAS / SAM / Q2n on the outputs x 2^16).
    model_kwargs: module overrides (e.g. ``swapped_inputs=False`` for DARN, smaller widths).
    ratio: the scale ratio of the evaluation indices.
  """

  def __init__(self, name: str, examples: Sequence[dict], *,
               eval_examples: Sequence[dict] = (), model_kwargs: dict | None = None,
               ratio: int = 6):
    self.name, self.recipe = name, _recipe(name)
    if not examples:
      raise ValueError("examples: expected at least one training example")
    self.examples, self.eval_examples, self.ratio = list(examples), list(eval_examples), ratio
    nbands = self.examples[0]["gt"].shape[-1]
    self.module = deep.MODELS[name].build(nbands=nbands, **(model_kwargs or {}))
    self._predict = jax.jit(lambda v, *x: self._apply(v, x, train=False)[0])

  def train_source(self):
    return self.examples

  def _apply(self, variables, inputs, train: bool):
    if self.name == "dip_hyperkite":
      if train:
        return self.module.apply(variables, *inputs, train=True, mutable=["batch_stats"])
      return self.module.apply(variables, *inputs, train=False), {}
    return self.module.apply(variables, *inputs), {}

  def init(self, rng, batch):
    variables = self.module.init(rng, *_inputs(self.name, batch))
    params = deep.official_init(variables["params"], jax.random.fold_in(rng, 1), self.recipe.init)
    return params, {k: v for k, v in variables.items() if k != "params"}

  def loss(self, params, state, batch, rng):
    """The recipe's loss (MSE, 0.9 MSE + 0.1 SAM, or L1), plus Kite's coupled L2.

    Args:
      params: trainable parameters.
      state: non-trainable collections (Kite's ``batch_stats``).
      batch: :func:`rr_examples` examples batched, cubes ``(N, H, W, B)``, ``pan (N, H, W, 1)``.
      rng: unused.

    Returns:
      ``(loss, {"mse", "l1"[, "state"]})``.
    """
    del rng
    out, updates = self._apply({"params": params, **state}, _inputs(self.name, batch), True)
    gt = batch["gt"]
    mse, l1 = jnp.mean((out - gt) ** 2), jnp.mean(jnp.abs(out - gt))
    if self.recipe.loss == "mse":
      loss = mse
    elif self.recipe.loss == "mse_sam":
      loss = 0.9 * mse + 0.1 * indices.sam_loss(out, gt)
    else:
      loss = l1
    aux = {"mse": mse, "l1": l1}
    if self.recipe.weight_decay:
      l2 = sum(jnp.sum(p ** 2) for p in jax.tree_util.tree_leaves(params))
      loss = loss + 0.5 * self.recipe.weight_decay * l2
    if updates:
      aux["state"] = {**state, **updates}
    return loss, aux

  def predict(self, params, state, example: dict) -> np.ndarray:
    """The fused image in DN for one normalised example (DARN / Kite clip to [0, 1] first).

    Args:
      params: trainable parameters.
      state: non-trainable collections.
      example: one :func:`rr_examples` example (unbatched).

    Returns:
      The fused cube ``(H, W, B)`` in DN, float64 NumPy.
    """
    inputs = tuple(x[None] for x in _inputs(self.name, example))
    out = self._predict({"params": params, **state}, *inputs)[0]
    if self.recipe.prior is not None:
      out = jnp.clip(out, 0.0, 1.0)
    return np.asarray(out, np.float64) * NORMALISATION

  def evaluate(self, params, state) -> dict[str, float]:
    """Mean RR scores (:func:`.protocol.evaluation_rr`) of the evaluation examples.

    Args:
      params: trainable parameters.
      state: non-trainable collections.

    Returns:
      ``{"ERGAS", "SAM", "Q2n"}`` Python floats, or ``{}`` without evaluation examples.
    """
    if not self.eval_examples:
      return {}
    scores = [protocol.evaluation_rr(self.predict(params, state, ex),
                                    np.asarray(ex["gt"], np.float64) * NORMALISATION, self.ratio)
              for ex in self.eval_examples]
    return {k: float(np.mean([float(s[k]) for s in scores])) for k in scores[0]}


# ------------------------------------------------------------------------------------------------
# R-PNN pre-training
# ------------------------------------------------------------------------------------------------

class RPNNPretrainTask:
  """R-PNN's optional pre-training on band 0 of FR patches: ``L_spec + 0.5 L_struct``.

  Official settings (``R_PNN/config.yaml``): Adam 1e-5, batch 4, 200 epochs
  (:func:`rpnn_pretrain_config`). Examples: normalised ``band_up (H, W, 1)``, ``pan (H, W, 1)``,
  ``band_lr (h, w, 1)``.
  """

  alpha = 0.5

  def __init__(self, examples: Sequence[dict], ratio: int = 6):
    self.examples, self.ratio = list(examples), ratio
    self.module = deep.RPNNToolbox()

  def train_source(self):
    return self.examples

  def init(self, rng, batch):
    x = per_image.pad_input(batch["band_up"], batch["pan"])
    return deep.official_init(self.module.init(rng, x)["params"], jax.random.fold_in(rng, 1)), {}

  def loss(self, params, state, batch, rng):
    """``L_spec + alpha L_struct`` of R-PNN on band 0 (``alpha`` 0.5).

    Args:
      params: trainable parameters.
      state: unused.
      batch: ``band_up (N, H, W, 1)``, ``pan (N, H, W, 1)``, ``band_lr (N, h, w, 1)``.
      rng: unused.

    Returns:
      ``(loss, {"spectral", "structural"})``.
    """
    del state, rng
    x = per_image.pad_input(batch["band_up"], batch["pan"])
    loss, (spec, struct) = per_image.rpnn_losses(self.module, params, x, batch["band_lr"],
                                                 self.alpha, self.ratio)
    return loss, {"spectral": spec, "structural": struct}

  def evaluate(self, params, state):
    return {}


def rpnn_pretrain_config(num_examples: int, epochs: int = 200) -> ml_collections.ConfigDict:
  """The :func:`jspectral.train.fit` config of R-PNN's official pre-training.

  Official settings (``R_PNN/config.yaml``): Adam 1e-5, batch 4, 200 epochs.

  Args:
    num_examples: number of training patches.
    epochs: number of epochs.

  Returns:
    An ``ml_collections.ConfigDict``.
  """
  c = default_config()
  c.batch_size = min(4, num_examples)
  c.total_steps = epochs * math.ceil(num_examples / c.batch_size)
  c.optimizer.learning_rate = 1e-5
  c.log_every = max(min(c.total_steps // 10, 100), 1)
  c.checkpoint_every = max(c.total_steps // 4, 1000)   # and at the last step
  c.progress = False
  return c


# Folder of each network in the toolbox repository; its weights are ``<Folder>/weights/PRISMA.tar``.
RELEASED_FOLDERS = {"hyperpnn": "HyperPNN", "hspenet": "HSpeNet", "hyper_dsnet": "HyperDSNet",
                    "darn": "DHPDarn", "dip_hyperkite": "DIPHyperKite", "r_pnn": "R_PNN"}


def released_weights_path(name: str, root, dataset: str = "PRISMA") -> pathlib.Path:
  """Where the released weights of ``name`` live under ``root``.

  ``root`` is either a checkout of matciotola/hyperspectral_pansharpening_toolbox (the file is
  ``<root>/<Folder>/weights/<dataset>.tar``, a ``torch.save``d ``state_dict``, read with torch) or
  a folder of NumPy conversions ``<root>/<name>.npz`` (``np.savez(path, **state_dict)``), which
  is preferred when present and needs no torch.

  Args:
    name: registry name (:data:`RELEASED_FOLDERS`).
    root: the folder.
    dataset: the toolbox's dataset name (weights ship for ``PRISMA``).

  Returns:
    The path (``.npz`` if it exists, else the toolbox's ``.tar``).

  Raises:
    ValueError: ``name`` has no released weights.
  """
  if name not in RELEASED_FOLDERS:
    raise ValueError(f"name: the toolbox releases weights for {sorted(RELEASED_FOLDERS)}, "
                     f"got {name!r}")
  root = pathlib.Path(root)
  npz = root / f"{name}.npz"
  return npz if npz.exists() else root / RELEASED_FOLDERS[name] / "weights" / f"{dataset}.tar"


def _read_state_dict(path: pathlib.Path) -> dict:
  if path.suffix == ".npz":
    with np.load(path) as f:
      return {k: f[k] for k in f.files}
  try:
    import torch  # noqa: PLC0415  (optional: only the toolbox's .tar files need it)
  except ImportError as err:
    raise ImportError(f"{path}: reading the toolbox's torch checkpoint needs PyTorch; convert "
                      "it once with np.savez(<name>.npz, **{k: v.numpy() for k, v in "
                      "torch.load(path).items()}) and put the .npz in the weights folder") from err
  state = torch.load(path, map_location="cpu", weights_only=True)
  return {k: v.detach().cpu().numpy() for k, v in state.items()}


def released_weights(name: str, root, dataset: str = "PRISMA") -> tuple:
  """The toolbox's released weights of ``name`` as ``(module, params, state)``.

  Args:
    name: registry name (:data:`RELEASED_FOLDERS`).
    root: toolbox checkout or ``.npz`` folder (:func:`released_weights_path`).
    dataset: the toolbox's dataset name.

  Returns:
    ``(module, params, state)``: the flax module built from the tensor shapes, its parameters
    and its non-trainable collections (Kite's ``batch_stats``; ``{}`` otherwise).

  Raises:
    FileNotFoundError: the file is absent (the message says where it comes from).
  """
  path = released_weights_path(name, root, dataset)
  if not path.exists():
    raise FileNotFoundError(
        f"{path}: no released {dataset} weights for {name!r}. They ship with the toolbox "
        f"(github.com/matciotola/hyperspectral_pansharpening_toolbox, "
        f"{RELEASED_FOLDERS[name]}/weights/{dataset}.tar): point the weights folder at a "
        f"checkout, or put {name}.npz (np.savez of its state_dict) there")
  module, variables = deep.MODELS[name].from_torch(_read_state_dict(path))
  return module, variables["params"], {k: v for k, v in variables.items() if k != "params"}
