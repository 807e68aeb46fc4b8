"""Training tasks for :func:`jspectral.train.fit`: single-image SR (ESSAformer under the SSPSR
protocol) and the multi-task Spectral Mixup recipe of kli8996/HSISR.

Examples are dicts of bands-last float32 arrays in the SSPSR file layout: ``lr`` (SSPSR ``ms``),
``lms`` (``ms_bicubic``, the LR cube upsampled back to HR size) and ``hr`` (``gt``). Building them
from HR cubes is :func:`patch_pairs`, with the degradation passed in (MATLAB ``imresize`` for the
papers' protocol).

ESSAformer releases no training code; its README points to SSPSR, so :class:`SingleImageSRTask`
follows SSPSR: L1 loss (``HybridLoss`` optional), dihedral ×8 augmentation applied identically to
LR, bicubic and HR, Adam 1e-4 decayed ×0.1 at epoch 30 of 40.

:class:`MultiTaskSRTask` reproduces the official per-task update steps: each ``fit`` step is ONE
optimizer update of one task, in the official order per iteration (labeled HSI, Spectral Mixup,
RGB ×3, SSL ×3: 8 updates; 5 once SSL stops after the first half of the epochs), sharing one Adam
state. The update's task is picked from the engine's global step (the loss takes ``step``), so the
order survives a resume.
Every batch carries one chunk of each source (labeled HSI, RGB, LR-only HSI; one grain pipeline,
each source cycled at its own length) and the step's task picks what it uses. Difference from the
official loop: the Spectral Mixup update draws a fresh labeled batch instead of re-using the
labeled update's batch (same distribution, same number of updates).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence

import grain
import jax
import jax.numpy as jnp
import numpy as np

from jspectral.data import mixup, pipeline
from jspectral.nn import torch_init
from jspectral.superres import mixup_mtl
from jspectral.superres.losses import hybrid_loss
from jspectral.superres.protocol import quality_assessment

Example = dict[str, np.ndarray]
Resize = Callable[[np.ndarray, tuple[int, int]], np.ndarray]


@functools.partial(jax.jit, static_argnums=1)
def _antialiased_bicubic(x: jax.Array, hw: tuple[int, int]) -> jax.Array:
  return jax.image.resize(x, (*hw, x.shape[-1]), "bicubic", antialias=True)


def antialiased_bicubic(x: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
  """Antialiased bicubic resize of one cube (``jax.image.resize``; compiled once per shape).

  The synthetic smoke degradation; the papers' protocol uses MATLAB ``imresize``
  (:func:`jspectral.data.degradations.imresize`), which differs at the borders.

  Args:
    x: cube ``(H, W, C)``.
    hw: output height and width.

  Returns:
    The resized cube ``(*hw, C)``, NumPy.
  """
  return np.asarray(_antialiased_bicubic(jnp.asarray(x), tuple(hw)))


def patch_pairs(hr: np.ndarray, scale: int, resize: Resize, patch: int | None = None,
                stride: int | None = None) -> list[Example]:
  """SSPSR-style training (or test) pairs from one HR cube.

  Each HR patch (``patch`` x ``patch`` every ``stride`` pixels; the whole cube when ``patch`` is
  None) gives ``lr = resize(hr, (patch/s, patch/s))`` and ``lms = resize(lr, (patch, patch))``.

  Args:
    hr: high-resolution cube ``(H, W, C)``.
    scale: SR factor ``s``.
    resize: ``(cube (H, W, C), (h, w)) -> (h, w, C)``, the degradation (MATLAB ``imresize`` for
      the papers' protocol).
    patch: HR patch side, divisible by ``scale``; None for the whole cube.
    stride: step between patches (default: ``patch``, no overlap).

  Returns:
    A list of ``{"lr": (p/s, p/s, C), "lms": (p, p, C), "hr": (p, p, C)}`` float32 examples.

  Raises:
    ValueError: ``hr`` is not 3-D, or its size (or ``patch``) is not divisible by ``scale``.
  """
  if hr.ndim != 3:
    raise ValueError(f"hr: expected an (H, W, C) cube, got shape {hr.shape}")
  height, width = hr.shape[:2]
  patch_h, patch_w = (height, width) if patch is None else (patch, patch)
  if patch_h % scale or patch_w % scale:
    raise ValueError(f"hr: size {patch_h}x{patch_w} is not divisible by the scale {scale}")
  stride = stride or patch_h
  pairs = []
  for top in range(0, height - patch_h + 1, stride):
    for left in range(0, width - patch_w + 1, stride):
      gt = np.asarray(hr[top:top + patch_h, left:left + patch_w], np.float32)
      lr = np.asarray(resize(gt, (patch_h // scale, patch_w // scale)), np.float32)
      lms = np.asarray(resize(lr, (patch_h, patch_w)), np.float32)
      pairs.append({"lr": lr, "lms": lms, "hr": gt})
  return pairs


_quality = jax.jit(quality_assessment, static_argnames=("ratio", "clip_cosine"))


def evaluate_images(predict: Callable[[Example], np.ndarray], images: Sequence[Example],
                    ratio: float, clip_cosine: bool = False) -> dict[str, float]:
  """Mean over test images of the SSPSR indices of ``predict`` and of the bicubic baseline.

  Args:
    predict: ``example -> (H, W, C)`` super-resolved cube.
    images: test examples with ``"lr"``, ``"lms"`` ``(H, W, C)`` and ``"hr"`` ``(H, W, C)``.
    ratio: ERGAS's resolution ratio.
    clip_cosine: clip SAM's cosine (the official no-clip SAM is NaN where a prediction's spectra
      are so close to the truth that the float32 cosine rounds above 1, e.g. bicubic on smooth
      cubes).

  Returns:
    The six :func:`~jspectral.superres.protocol.quality_assessment` indices by name, and the same
    with a ``bicubic_`` prefix for ``lms``, as Python floats.
  """
  ours, bicubic = [], []
  for image in images:
    for store, pred in ((ours, predict(image)), (bicubic, image["lms"])):
      store.append(_quality(jnp.asarray(pred), jnp.asarray(image["hr"]), ratio=ratio,
                            clip_cosine=clip_cosine))
  out = {k: float(np.mean([r[k] for r in ours])) for k in ours[0]}
  out.update({f"bicubic_{k}": float(np.mean([r[k] for r in bicubic])) for k in bicubic[0]})
  return out


def _dihedral(example: Example, rng: np.random.Generator, keys: tuple[str, ...]) -> Example:
  return pipeline.random_flip_rotate(example, rng, keys=keys)


@dataclasses.dataclass
class SingleImageSRTask:
  """SSPSR protocol for an LR-only model ``model.apply(v, lr, train=...)`` (ESSAformer).

  SSPSR (``mains.py``) trains on the patch set, reports the validation L1 (eval mode) on its
  held-out ``evals`` patches every epoch and tests the last epoch's network on whole images;
  ``evaluate`` is that validation when ``val_examples`` are given (``fit`` runs it every
  ``eval_every`` steps and can select on ``val_L1``), and :meth:`test` the whole-image SSPSR
  indices.

  Attributes:
    model: a Flax module taking ``(N, h, w, C)`` and returning ``(N, s h, s w, C)``.
    train_examples: random-access ``lr``/``hr`` (optionally ``lms``) patches: a list or a
      :class:`~jspectral.superres.sspsr_data.PatchPairs` index.
    test_images: whole ``lr``/``lms``/``hr`` test images (whole-image inference: ESSA is global).
    scale: SR factor (ERGAS ratio).
    loss_name: ``l1`` (ESSAformer paper) or ``hybrid`` (SSPSR's default ``HybridLoss``).
    clip_cosine: clip SAM's cosine in evaluation (official: no clip).
    val_examples: held-out validation patches (empty: ``evaluate`` returns the test indices).
    random_dihedral: draw one random dihedral transform per example (``False`` when the source
      already serves SSPSR's 8 transforms of every patch, as ``PatchPairs(dihedral=True)``).
    init_scheme: ``torch`` (PyTorch's default Conv/Linear initialisation, as the official code
      keeps it; :func:`jspectral.nn.torch_init.torch_default_init`) or ``flax`` (Flax's
      initialisers).
    eval_batch: validation batch size.
  """

  model: object
  train_examples: Sequence[Example]
  test_images: Sequence[Example]
  scale: int
  loss_name: str = "l1"
  clip_cosine: bool = False
  val_examples: Sequence[Example] = ()
  random_dihedral: bool = True
  init_scheme: str = "torch"
  eval_batch: int = 8

  def __post_init__(self):
    if self.loss_name not in ("l1", "hybrid"):
      raise ValueError(f"loss_name: expected 'l1' or 'hybrid', got {self.loss_name!r}")
    if self.init_scheme not in ("torch", "flax"):
      raise ValueError(f"init_scheme: expected 'torch' or 'flax', got {self.init_scheme!r}")
    self._predict = jax.jit(lambda params, lr: self.model.apply({"params": params}, lr))

  def train_source(self):
    return grain.MapDataset.source(self.train_examples)

  @property
  def augment(self) -> Callable[[Example, np.random.Generator], Example] | None:
    """A random dihedral transform of ``lr``/``lms``/``hr`` (``None`` when the source expands
    every patch into its 8 transforms itself)."""
    if not self.random_dihedral:
      return None
    return lambda example, rng: _dihedral(example, rng, ("lr", "lms", "hr"))

  def init(self, rng, batch):
    """Initial parameters: Flax's initialisers, then PyTorch's defaults with ``init_scheme``.

    A zero-initialised ``conv_last`` (``upsample_skip``) keeps its zeros.

    Args:
      rng: PRNG key.
      batch: a batch with ``"lr"`` ``(B, h, w, C)``.

    Returns:
      ``(params, {})``.
    """
    params_rng, dropout_rng, torch_rng = jax.random.split(rng, 3)
    variables = self.model.init({"params": params_rng, "dropout": dropout_rng}, batch["lr"])
    params = variables["params"]
    if self.init_scheme == "torch":
      skip = getattr(self.model, "upsample_skip", False)
      params = torch_init.torch_default_init(
          params, torch_rng, keep=lambda path: skip and path == ("conv_last",))
    return params, {}

  def loss(self, params, state, batch, rng):
    """L1 (or SSPSR hybrid) loss of one batch, dropout on.

    Args:
      params: trainable parameters.
      state: unused (``{}``).
      batch: ``{"lr": (B, h, w, C), "hr": (B, s h, s w, C)}`` (``lms`` ignored).
      rng: dropout key.

    Returns:
      ``(loss, {"l1": the L1 loss})``.
    """
    pred = self.model.apply({"params": params}, batch["lr"], train=True, rngs={"dropout": rng})
    l1 = jnp.mean(jnp.abs(pred - batch["hr"]))
    loss = l1 if self.loss_name == "l1" else hybrid_loss(pred, batch["hr"])
    return loss, {"l1": l1}

  def predict(self, params, lr: np.ndarray) -> np.ndarray:
    """Whole-image super-resolution of one LR cube.

    Args:
      params: trainable parameters.
      lr: low-resolution cube ``(h, w, C)``.

    Returns:
      The SR cube ``(s h, s w, C)``, NumPy.
    """
    return np.asarray(self._predict(params, jnp.asarray(lr)[None])[0])

  def validation_l1(self, params) -> float:
    """SSPSR ``validate``: the mean over batches of each batch's L1 (eval mode).

    Args:
      params: trainable parameters.

    Returns:
      The validation L1, a Python float.
    """
    means = []
    for start in range(0, len(self.val_examples), self.eval_batch):
      chunk = [self.val_examples[i]
               for i in range(start, min(start + self.eval_batch, len(self.val_examples)))]
      lr, hr = (np.stack([e[k] for e in chunk]) for k in ("lr", "hr"))
      means.append(float(jnp.mean(jnp.abs(self._predict(params, jnp.asarray(lr)) - hr))))
    return float(np.mean(means))

  def test(self, params) -> dict[str, float]:
    """SSPSR indices on the whole test images, and the bicubic baseline's.

    Args:
      params: trainable parameters.

    Returns:
      :func:`evaluate_images`' dict of Python floats.
    """
    return evaluate_images(lambda im: self.predict(params, im["lr"]), self.test_images, self.scale,
                           self.clip_cosine)

  def evaluate(self, params, state):
    """The validation L1 (``{"val_L1"}``) with a validation set, else the test indices.

    Args:
      params: trainable parameters.
      state: unused.

    Returns:
      A dict of Python floats.
    """
    del state
    if len(self.val_examples):
      return {"val_L1": self.validation_l1(params)}
    return self.test(params)


KINDS = ("labeled", "mixup", "rgb", "ssl")
# key prefix of each training source in a batch
SOURCES = {"labeled": "", "rgb": "rgb_", "unlabeled": "u_"}


@dataclasses.dataclass(frozen=True)
class UpdatePlan:
  """Which task each optimizer update trains (official ``mains.train`` order).

  One iteration = ``labeled``, ``theta_mix`` × ``mixup``, ``theta_rgb`` × ``rgb``,
  ``theta_unlabel`` × ``ssl`` (components switched off are left out); SSL runs while the 0-based
  epoch ``e <= epochs / 2``.
  """

  epochs: int
  iterations_per_epoch: int
  use_mixup: bool = True
  use_rgb: bool = True
  use_ssl: bool = True
  theta_mix: int = 1
  theta_rgb: int = 3
  theta_unlabel: int = 3

  def cycle(self, with_ssl: bool) -> tuple[int, ...]:
    """The tasks of one iteration, in the official order.

    Args:
      with_ssl: whether the SSL updates run in this epoch.

    Returns:
      ``KINDS`` indices of the iteration's updates.
    """
    kinds = (["labeled"] + ["mixup"] * self.theta_mix * self.use_mixup
             + ["rgb"] * self.theta_rgb * self.use_rgb
             + ["ssl"] * self.theta_unlabel * (self.use_ssl and with_ssl))
    return tuple(KINDS.index(k) for k in kinds)

  @property
  def ssl_epochs(self) -> int:
    return min(self.epochs, self.epochs // 2 + 1) if self.use_ssl else 0

  def updates_before_epoch(self, epoch: int) -> int:
    """Number of updates before the 0-based ``epoch`` starts.

    Args:
      epoch: 0-based epoch index (``epochs`` gives the total).

    Returns:
      The update count, a Python int.
    """
    early = min(epoch, self.ssl_epochs)
    return self.iterations_per_epoch * (early * len(self.cycle(True))
                                        + (epoch - early) * len(self.cycle(False)))

  @property
  def total_updates(self) -> int:
    return self.updates_before_epoch(self.epochs)

  def kind(self, count: jax.Array) -> jax.Array:
    """The ``KINDS`` index of update number ``count`` (0-based), jit-safe.

    Args:
      count: int32 scalar update counter.

    Returns:
      int32 scalar index into ``KINDS``.
    """
    early, late = (jnp.asarray(self.cycle(flag)) for flag in (True, False))
    switch = self.updates_before_epoch(self.ssl_epochs)
    return jnp.where(count < switch, early[count % len(early)],
                     late[jnp.maximum(count - switch, 0) % len(late)])

  def lr_boundaries(self) -> list[int]:
    """Update counts where the official schedule decays x0.3.

    Epochs 5 and 10 (1-based), twice at 10 (see
    :func:`jspectral.superres.mixup_mtl.official_learning_rate`).

    Returns:
      Update counts, one per x0.3 decay (repeated where it decays twice).
    """
    boundaries = []
    for epoch in range(2, self.epochs + 1):
      ratio = (mixup_mtl.official_learning_rate(epoch, self.epochs)
               / mixup_mtl.official_learning_rate(epoch - 1, self.epochs))
      boundaries += [self.updates_before_epoch(epoch - 1)] * round(np.log(ratio) / np.log(0.3))
    return boundaries


@dataclasses.dataclass
class MultiTaskSRTask:
  """The Spectral Mixup multi-task recipe on :class:`~jspectral.superres.mixup_mtl.MultiTaskSR`.

  Attributes:
    model: the multi-task network.
    labeled: HSI ``lr``/``lms``/``hr`` patches.
    rgb: 8-channel ``lr``/``lms``/``hr`` patches (RGB SR set expanded by ``RGB_TO_8CH``).
    unlabeled: LR-only HSI ``lr``/``lms`` patches.
    test_images: whole HSI test images.
    projection: HSI -> 8-channel matrix ``(C, n_subs)`` of the consistency loss.
    plan: the update schedule (switches and repeat counts).
    mixup_weight: share of the re-mixed cube in Spectral Mixup (official ½).
    ratio: ERGAS ratio (the official code uses 4 at every scale).
    clip_cosine: clip SAM's cosine in evaluation (official: no clip).
    dispatch: how one jitted step trains the update's task (same loss and gradient either way):
      ``switch`` (``lax.switch`` over the plan's tasks: each update runs only its own forward,
      the cheapest update, but the step compiles every task's forward and backward) or
      ``select`` (every update runs one spectral and one RGB forward and picks inputs and loss:
      about 3x faster compilation, up to 50 % more compute per update; for short CPU runs).
    samplers: per source (``labeled``, ``rgb``, ``unlabeled``) a ``(image, np_rng) -> lr/lms/hr``
      patch sampler (:class:`~jspectral.superres.mixup_data.PatchSampler`); that source's items
      are then whole images ``{"image": (H, W, C)}`` and every example is a fresh random patch
      (the paper presets). Sources without one hold ready ``lr``/``lms``/``hr`` patches.
    init_scheme: ``torch`` (every conv redrawn with PyTorch's default initialisation, as the
      official ``DeepShare`` keeps it) or ``flax`` (Flax's initialisers). A zero-initialised last
      conv (``lms_skip``) stays zero.
  """

  model: mixup_mtl.MultiTaskSR
  labeled: Sequence[Example]
  rgb: Sequence[Example]
  unlabeled: Sequence[Example]
  test_images: Sequence[Example]
  projection: np.ndarray
  plan: UpdatePlan
  mixup_weight: float = 0.5
  ratio: float = 4
  clip_cosine: bool = False
  dispatch: str = "switch"
  samplers: Mapping[str, Callable[[np.ndarray, np.random.Generator], Example]] = (
      dataclasses.field(default_factory=dict))
  init_scheme: str = "torch"

  def __post_init__(self):
    if self.init_scheme not in ("torch", "flax"):
      raise ValueError(f"init_scheme: expected 'torch' or 'flax', got {self.init_scheme!r}")
    if set(self.samplers) - set(SOURCES):
      raise ValueError(f"samplers: expected keys among {tuple(SOURCES)}, got "
                       f"{sorted(self.samplers)}")
    if self.dispatch not in ("switch", "select"):
      raise ValueError(f"dispatch: expected 'switch' or 'select', got {self.dispatch!r}")
    if self.plan.use_rgb and not self.rgb:
      raise ValueError("rgb: the RGB task is on (plan.use_rgb) but no RGB examples were given")
    if self.plan.use_ssl and not self.unlabeled:
      raise ValueError("unlabeled: SSL is on (plan.use_ssl) but no unlabeled examples were given")
    self._predict = jax.jit(lambda params, lr, lms: self.model.apply({"params": params}, lr, lms))

  def _sources(self) -> dict[str, Sequence[Example]]:
    used = {"labeled": True, "rgb": self.plan.use_rgb, "unlabeled": self.plan.use_ssl}
    return {name: getattr(self, name) for name, on in used.items() if on}

  def train_source(self):
    """One item per index: the ``i % len``-th example (or whole image) of every source in use.

    Returns:
      A lazy ``grain.MapDataset``; labeled keys bare, RGB ``rgb_*``, LR-only ``u_*`` (their
      ``hr`` dropped), whole images ``<prefix>image``.
    """
    sources = self._sources()
    length = max(len(s) for s in sources.values())

    def item(i):
      out = {}
      for name, source in sources.items():
        example = source[i % len(source)]
        if name in self.samplers:
          example = {"image": example}
        elif name == "unlabeled":
          example = {k: example[k] for k in ("lr", "lms")}
        out.update({SOURCES[name] + k: v for k, v in example.items()})
      return out

    return grain.MapDataset.range(length).map(item)

  def augment(self, example: Example, rng: np.random.Generator) -> Example:
    """Draws the random patches of whole-image sources, then one dihedral mode per source.

    Args:
      example: an item of :meth:`train_source`.
      rng: NumPy generator.

    Returns:
      ``lr``/``lms``/``hr`` patches per source (no ``hr`` for the LR-only source).
    """
    example = dict(example)
    for name, prefix in SOURCES.items():
      if prefix + "image" in example:
        pair = self.samplers[name](example.pop(prefix + "image"), rng)
        keep = ("lr", "lms") if name == "unlabeled" else ("lr", "lms", "hr")
        example.update({prefix + k: pair[k] for k in keep})
      present = tuple(prefix + k for k in ("lr", "lms", "hr") if prefix + k in example)
      if present:
        example = _dihedral(example, rng, present)
    return example

  def init(self, rng, batch):
    """Initial parameters: PyTorch's defaults (``init_scheme="torch"``) or Flax's initialisers.

    The torch scheme draws every conv from the parameter shapes in one random call
    (:func:`jspectral.nn.torch_init.torch_default_params`; the network has only convs), so
    Flax's initialisers never run: their ~100 per-layer draws dominate the compile time of
    ``fit``'s jitted init. ``lms_skip``'s last convs start at zero either way.

    Args:
      rng: PRNG key.
      batch: a batch with ``"lr"`` and ``"lms"``.

    Returns:
      ``(params, {})``.
    """
    init = lambda key: self.model.init(key, batch["lr"], batch["lms"])["params"]
    if self.init_scheme == "flax":
      return init(rng), {}
    zero = ("final", "final_RGB") if self.model.lms_skip else ()
    params = torch_init.torch_default_params(jax.eval_shape(init, rng), rng,
                                             zero=lambda path: path[-1] in zero)
    return params, {}

  def _apply(self, params):
    return lambda lr, lms, modality="spectral": self.model.apply(
        {"params": params}, lr, lms, modality)

  def _switch_loss(self, params, batch, rng, kind):
    """Only the update's task: one ``lax.switch`` branch per task in the plan."""
    apply = self._apply(params)

    def labeled():
      return hybrid_loss(apply(batch["lr"], batch["lms"]), batch["hr"])

    def mixed():
      (lr, lms, hr), _ = mixup.spectral_mixup(rng, batch["lr"], batch["lms"], batch["hr"],
                                              weight=self.mixup_weight)
      return hybrid_loss(apply(lr, lms), hr)

    def rgb():
      return hybrid_loss(apply(batch["rgb_lr"], batch["rgb_lms"], "rgb"), batch["rgb_hr"])

    def ssl():
      return mixup_mtl.consistency_loss(self.model, {"params": params}, batch["u_lr"],
                                        batch["u_lms"], jnp.asarray(self.projection))

    branches = {"labeled": labeled, "mixup": mixed, "rgb": rgb, "ssl": ssl}
    used = sorted(set(self.plan.cycle(True)))
    index = jnp.searchsorted(jnp.asarray(used), kind)
    return jax.lax.switch(index, [branches[KINDS[k]] for k in used])

  def _select_loss(self, params, batch, rng, kind):
    """One spectral and one RGB forward for every task; ``kind`` picks their inputs and the loss.

    Labeled = Spectral Mixup with weight 0 (``(1 - 0) X + 0 · X R`` is ``X`` exactly); the SSL
    update feeds the LR-only cube to the spectral pass and its projection to the RGB pass.
    """
    apply = self._apply(params)
    is_ssl = kind == KINDS.index("ssl")
    weight = jnp.where(kind == KINDS.index("mixup"), self.mixup_weight, 0.0)
    (lr, lms, hr), _ = mixup.spectral_mixup(rng, batch["lr"], batch["lms"], batch["hr"],
                                            weight=weight)
    losses = {}
    if self.plan.use_ssl:
      lr, lms = (jnp.where(is_ssl, batch["u_" + k], v) for k, v in (("lr", lr), ("lms", lms)))
    spectral = apply(lr, lms)
    losses["labeled"] = losses["mixup"] = hybrid_loss(spectral, hr)
    if self.plan.use_rgb or self.plan.use_ssl:
      projection = jnp.asarray(self.projection)
      inputs = {k: batch["rgb_" + k] for k in ("lr", "lms")} if self.plan.use_rgb else {}
      if self.plan.use_ssl:
        projected = {k: mixup_mtl.project_bands(batch["u_" + k], projection)
                     for k in ("lr", "lms")}
        inputs = {k: jnp.where(is_ssl, v, inputs[k]) if inputs else v
                  for k, v in projected.items()}
      rgb = apply(inputs["lr"], inputs["lms"], "rgb")
      if self.plan.use_rgb:
        losses["rgb"] = hybrid_loss(rgb, batch["rgb_hr"])
      if self.plan.use_ssl:
        losses["ssl"] = hybrid_loss(mixup_mtl.project_bands(spectral, projection), rgb)
    used = sorted(set(self.plan.cycle(True)))
    index = jnp.searchsorted(jnp.asarray(used), kind)
    return jnp.stack([losses[KINDS[k]] for k in used])[index]

  def loss(self, params, state, batch, rng, step):
    """The loss of the task whose turn it is (plan order at the global ``step``).

    Args:
      params: trainable parameters.
      state: unused (``{}``).
      batch: labeled ``lr``/``lms``/``hr``, plus ``rgb_*`` and ``u_*`` chunks when those tasks are
        on; cubes ``(B, h, w, C)`` / ``(B, s h, s w, C)``, RGB ones with 8 channels.
      rng: key of Spectral Mixup.
      step: int32 scalar, the number of updates before this one.

    Returns:
      ``(loss, {"kind": KINDS index})``.
    """
    del state
    kind = self.plan.kind(step)
    dispatch = self._switch_loss if self.dispatch == "switch" else self._select_loss
    return dispatch(params, batch, rng, kind), {"kind": kind}

  def predict(self, params, lr: np.ndarray, lms: np.ndarray) -> np.ndarray:
    """HSI super-resolution of one LR cube (shared part + HSI head only).

    Args:
      params: trainable parameters.
      lr: low-resolution cube ``(h, w, C)``.
      lms: its bicubic upsampling ``(s h, s w, C)``.

    Returns:
      The SR cube ``(s h, s w, C)``, NumPy.
    """
    return np.asarray(self._predict(params, jnp.asarray(lr)[None], jnp.asarray(lms)[None])[0])

  def evaluate(self, params, state):
    """SSPSR indices on the whole HSI test images, and the bicubic baseline's.

    Args:
      params: trainable parameters.
      state: unused.

    Returns:
      :func:`evaluate_images`' dict of Python floats.
    """
    # lms may exceed hr by < s pixels (a side not divisible by s): crop both to hr, as official
    crop = lambda x, hr: x[:hr.shape[0], :hr.shape[1]]
    images = [{"hr": im["hr"], "lms": crop(im["lms"], im["hr"]), "input": im}
              for im in self.test_images]
    predict = lambda im: crop(self.predict(params, im["input"]["lr"], im["input"]["lms"]), im["hr"])
    return evaluate_images(predict, images, self.ratio, self.clip_cosine)
