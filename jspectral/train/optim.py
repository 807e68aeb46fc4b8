"""Optimizers, learning-rate schedules and parameter-group masks, built from a config.

Everything here is an optax composition: the config names the pieces, optax does the work.

Config fields (``ml_collections.ConfigDict``; see :func:`jspectral.train.default_config`):
  optimizer.name: ``sgd`` | ``momentum`` | ``adam`` | ``adam_l2`` | ``adamw`` | ``lars``
    (``adam_l2`` is PyTorch's ``Adam(weight_decay=wd)``: coupled L2, ``wd * param`` added to the
    gradient before the Adam moments; ``adamw`` decays decoupled, after them)
  optimizer.learning_rate, .momentum, .nesterov, .weight_decay, .b1, .b2, .eps,
    .skip_unused (adam, adamw: PyTorch's per-parameter state, unused parameters left alone,
      AdamW's decay included),
    .skip_until_used (adam, adamw: PyTorch 1.x, whose ``zero_grad`` keeps zero tensors: a
    parameter is left alone until its first gradient and updated at every step after it),
    .decay_1d (False: sgd/momentum/adamw skip weight decay on biases and norm scales, as LARS
    always does; True, the default, decays every parameter as plain optax does)
  schedule.name: ``constant`` | ``warmup_cosine`` | ``step`` | ``exponential`` | ``cyclic``
  schedule.warmup_steps, .min_lr_ratio, .boundaries, .decay_factor, .cycle_steps
  grad_clip_norm: clip by global norm when > 0
  trainable: regular expression over '/'-joined parameter paths; only matches are updated
"""

from __future__ import annotations

import functools
import re

import jax
import jax.numpy as jnp
import optax


def make_schedule(config, total_steps: int) -> optax.Schedule:
  """Learning-rate schedule ``step -> lr`` from ``config.schedule`` and ``config.optimizer``.

  Args:
    config: a config with ``optimizer.learning_rate`` and the ``schedule`` fields (module
      docstring).
    total_steps: the run length (the decay horizon of ``warmup_cosine`` and ``exponential``).

  Returns:
    An ``optax.Schedule``. ``step`` boundaries listed k times decay by ``decay_factor**k`` there;
    ``exponential`` is ``lr * decay_factor ** (step / total_steps)``.
  """
  lr = config.optimizer.learning_rate
  sched = config.schedule
  name = sched.name
  if name == "constant":
    return optax.constant_schedule(lr)
  if name == "warmup_cosine":
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=lr, warmup_steps=sched.warmup_steps,
        decay_steps=max(total_steps, sched.warmup_steps + 1), end_value=lr * sched.min_lr_ratio)
  if name == "step":
    factors = {}  # a boundary listed k times decays by decay_factor**k there
    for boundary in sched.boundaries:
      factors[int(boundary)] = factors.get(int(boundary), 1.0) * sched.decay_factor
    return optax.piecewise_constant_schedule(lr, factors)
  if name == "exponential":  # lr * decay_factor ** (step / total_steps)
    return optax.exponential_decay(lr, transition_steps=total_steps, decay_rate=sched.decay_factor)
  if name == "cyclic":
    return cyclic_schedule(lr, lr * sched.min_lr_ratio, sched.cycle_steps)
  raise ValueError(f"config.schedule.name: unknown schedule {name!r}; "
                   "expected constant, warmup_cosine, step, exponential or cyclic")


def cyclic_schedule(max_value: float, min_value: float, cycle_steps: int) -> optax.Schedule:
  """Triangular cyclic schedule (Smith, 2017): min -> max -> min every ``cycle_steps`` steps.

  Args:
    max_value: the learning rate at mid-cycle.
    min_value: the learning rate at the start (and end) of each cycle.
    cycle_steps: cycle length in steps (>= 2).

  Returns:
    An ``optax.Schedule`` ``step -> min + (max - min) (1 - |2 phase - 1|)``, ``phase`` the position
    in the cycle in [0, 1).
  """
  if cycle_steps < 2:
    raise ValueError(f"cycle_steps: expected an integer >= 2, got {cycle_steps}")

  def schedule(step):
    phase = jnp.mod(step, cycle_steps) / cycle_steps
    return min_value + (max_value - min_value) * (1.0 - jnp.abs(2.0 * phase - 1.0))

  return schedule


def make_optimizer(config, total_steps: int, schedule: optax.Schedule | None = None
                   ) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """The optax transformation of ``config`` (clipping, optimizer, mask) and its schedule.

  Args:
    config: a config with the ``optimizer``, ``schedule``, ``grad_clip_norm`` and ``trainable``
      fields (module docstring).
    total_steps: the run length, passed to :func:`make_schedule`.
    schedule: replaces the named ``config.schedule`` (a system whose official learning-rate trace
      no named schedule reproduces supplies its own).

  Returns:
    ``(tx, schedule)``: the ``optax.GradientTransformation`` and the schedule it uses.
  """
  schedule = make_schedule(config, total_steps) if schedule is None else schedule
  opt = config.optimizer
  name = opt.name
  decay_mask = None if opt.get("decay_1d", True) else _not_bias_or_norm
  if name == "sgd":
    core = optax.sgd(schedule)
  elif name == "momentum":
    core = optax.sgd(schedule, momentum=opt.momentum, nesterov=opt.nesterov)
  elif name in ("adam", "adamw") and (opt.get("skip_unused", False)
                                      or opt.get("skip_until_used", False)):
    core = _per_parameter_adam(opt, schedule, decay_mask, decoupled=name == "adamw")
  elif name == "adam":
    core = optax.adam(schedule, b1=opt.b1, b2=opt.b2, eps=opt.eps)
  elif name == "adam_l2":
    core = coupled_l2_adam(schedule, opt.weight_decay, b1=opt.b1, b2=opt.b2, eps=opt.eps,
                           mask=decay_mask)
  elif name == "adamw":
    core = optax.adamw(schedule, b1=opt.b1, b2=opt.b2, eps=opt.eps, weight_decay=opt.weight_decay,
                       mask=decay_mask)
  elif name == "lars":
    core = optax.lars(schedule, weight_decay=opt.weight_decay, momentum=opt.momentum,
                      weight_decay_mask=_not_bias_or_norm, trust_ratio_mask=_not_bias_or_norm)
  else:
    raise ValueError(f"config.optimizer.name: unknown optimizer {name!r}; "
                     "expected sgd, momentum, adam, adam_l2, adamw or lars")
  for field in ("skip_unused", "skip_until_used"):
    if opt.get(field, False) and name not in ("adam", "adamw"):
      raise ValueError(f"config.optimizer.{field}: implemented for adam and adamw, not {name!r}")
  if name in ("sgd", "momentum") and opt.weight_decay:
    core = optax.chain(optax.add_decayed_weights(opt.weight_decay, decay_mask), core)
  chain = [core]
  if config.grad_clip_norm:
    chain.insert(0, optax.clip_by_global_norm(config.grad_clip_norm))
  tx = optax.chain(*chain)
  if config.trainable:
    tx = optax.multi_transform({"train": tx, "freeze": optax.set_to_zero()},
                               trainable_labels(config.trainable))
  return tx, schedule


def _per_parameter_adam(opt, schedule, decay_mask, decoupled: bool):
  """``adam`` / ``adamw`` with PyTorch's per-parameter state (:func:`skip_unused`); AdamW's
  decoupled decay, like its moments, only touches parameters that had a gradient."""
  inner = optax.scale_by_adam(b1=opt.b1, b2=opt.b2, eps=opt.eps)
  if decoupled:
    inner = optax.chain(inner, optax.add_decayed_weights(opt.weight_decay, decay_mask))
  return optax.chain(skip_unused(inner, until_first_use=opt.get("skip_until_used", False)),
                     optax.scale_by_learning_rate(schedule))


def coupled_l2_adam(learning_rate, weight_decay: float, *, b1: float = 0.9, b2: float = 0.999,
                    eps: float = 1e-8, mask=None) -> optax.GradientTransformation:
  """PyTorch's ``torch.optim.Adam(weight_decay=wd)``: L2 coupled to the gradient.

  ``g <- g + wd * param`` enters Adam's first and second moments (unlike AdamW, which adds the
  decay after the moment normalisation). Composed from ``optax.add_decayed_weights`` before
  ``optax.scale_by_adam``.

  Args:
    learning_rate: a float or an ``optax.Schedule``.
    weight_decay: the L2 coefficient ``wd`` (>= 0; may be a traced scalar, e.g. under ``vmap``
      over a sweep).
    b1, b2, eps: Adam's moment decays and denominator epsilon (PyTorch's defaults).
    mask: optional pytree (or function of params) of booleans: where to add the decay.

  Returns:
    An ``optax.GradientTransformation``.
  """
  if isinstance(weight_decay, (int, float)) and weight_decay < 0:
    raise ValueError(f"weight_decay: expected >= 0, got {weight_decay}")
  return optax.chain(optax.add_decayed_weights(weight_decay, mask),
                     optax.scale_by_adam(b1=b1, b2=b2, eps=eps),
                     optax.scale_by_learning_rate(learning_rate))


def skip_unused(inner: optax.GradientTransformation, *,
                until_first_use: bool = False) -> optax.GradientTransformation:
  """PyTorch's per-parameter optimizer state, where an unused parameter is left alone.

  In PyTorch a parameter that took no part in a step's forward pass (e.g. the attention branch
  HSDT's GSSA did not draw) has ``grad=None``: the optimizer neither updates it nor advances its
  state, and each parameter keeps its own step count (Adam's bias correction). Here every leaf has
  its own ``inner`` state, and a leaf whose gradient is exactly zero gets a zero update and keeps
  its state.

  With ``until_first_use`` a leaf is skipped only until its first nonzero gradient: PyTorch 1.x's
  ``zero_grad()`` zeroes gradients instead of setting them to ``None``, so once a parameter has
  had a gradient the optimizer updates it at every later step (its momentum keeps moving it), as
  in per-task training loops written for torch < 2 (kli8996/HSISR).

  Args:
    inner: a stateful transformation applied leaf by leaf (e.g. ``optax.scale_by_adam()``).
    until_first_use: the PyTorch 1.x behaviour above.

  Returns:
    An ``optax.GradientTransformation``; with ``until_first_use`` its state is ``(inner states,
    per-leaf "has had a gradient" flags)``.
  """

  def init(params):
    states = jax.tree.map(inner.init, params)
    if until_first_use:
      return states, jax.tree.map(lambda p: jnp.zeros((), bool), params)
    return states

  def update(updates, state, params=None):
    leaves, treedef = jax.tree.flatten(updates)
    state, started = state if until_first_use else (state, None)
    states = treedef.flatten_up_to(state)
    flags = treedef.flatten_up_to(started) if until_first_use else [False] * len(leaves)
    params = treedef.flatten_up_to(params) if params is not None else [None] * len(leaves)
    new_updates, new_states, new_flags = [], [], []
    for grad, leaf_state, flag, param in zip(leaves, states, flags, params, strict=True):
      update_, next_state = inner.update(grad, leaf_state, param)
      used = jnp.any(grad != 0) | flag
      new_updates.append(jnp.where(used, update_, jnp.zeros_like(update_)))
      new_states.append(jax.tree.map(functools.partial(_select, used), next_state, leaf_state))
      new_flags.append(used)
    new_state = treedef.unflatten(new_states)
    if until_first_use:
      new_state = (new_state, treedef.unflatten(new_flags))
    return treedef.unflatten(new_updates), new_state

  return optax.GradientTransformation(init, update)


def _select(condition, new, old):
  return jnp.where(condition, new, old)


def trainable_labels(pattern: str):
  """``params -> labels`` tree: ``"train"`` where the '/'-joined path matches ``pattern``.

  Args:
    pattern: a regular expression searched in :func:`path_name` of each parameter.

  Returns:
    A function mapping a params pytree to a pytree of ``"train"`` / ``"freeze"`` labels (for
    ``optax.multi_transform``).
  """
  regex = re.compile(pattern)

  def labels(params):
    return jax.tree_util.tree_map_with_path(
        lambda path, _: "train" if regex.search(path_name(path)) else "freeze", params)

  return labels


def path_name(path) -> str:
  """'/'-joined names of a ``tree_map_with_path`` key path, e.g. ``block_0/attn/lora_a``.

  Args:
    path: a key path (tuple of ``DictKey`` / ``SequenceKey`` / ``GetAttrKey``).

  Returns:
    The path as a string.
  """
  return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def _not_bias_or_norm(params):
  """``False`` for biases and 1-D (norm) parameters: LARS's convention, and ``decay_1d=False``."""
  return jax.tree.map(lambda p: p.ndim > 1, params)
