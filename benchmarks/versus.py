"""Side by side with the official code: the jspectral half, and the driver that interleaves both.

Each entry of :data:`CASES` names one workload at the shapes of ``benchmarks/versus_official.py``
(same names): a train step (forward, loss, gradients, optimiser update) and an inference call,
both jitted, timed after compilation with ``block_until_ready`` (compile time apart), with XLA's
memory analysis of each compiled function and the process's max RSS (the compiler's freed heap
handed back after compiling, as ``fit`` does).

* ``python -m benchmarks.versus [--cases A B] [--iters N]``: the jspectral side alone, writes
  ``benchmarks/results/versus.json`` (what ``python -m benchmarks`` / ``make benchmark`` run).
* ``python -m benchmarks.versus --driver --official-python PY --mirrors DIR``: starts one worker
  per side and case (``--serve``), interleaves their timings over ``--repeats`` rounds (the side
  that goes first alternates), keeps the minimum, and writes ``versus_driver.json`` and the
  markdown table ``versus_table.md`` (ratio = official time / jspectral time). ``--apart``
  starts a fresh worker for every turn, so the two sides' processes never coexist. Both
  sides inherit this process's environment; each row records its ``GLIBC_TUNABLES`` (``make
  benchmark`` sets ``glibc.malloc.hugetlb=1``, docs/benchmarks.md).

A case is a function returning :class:`Case`; adding one is one function and one line in
:data:`CASES` (and the same name in ``versus_official.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks.harness import RESULTS_DIR, write_results
from jspectral import train


class Case(NamedTuple):
  """One workload: ``train`` and ``infer`` as ``(function, args)``, jitted by the harness.

  Attributes:
    train: a pure train step ``fn(*args)`` returning ``(*state, loss)``, where ``state`` are the
      new values of its first ``len(state)`` arguments.
    infer: a pure inference call ``fn(*args)``.
    context: a context manager factory every compile and call runs under (e.g. x64).
    shapes: a short description of the workload.
  """

  train: tuple[Callable, tuple]
  infer: tuple[Callable, tuple]
  context: Callable[[], Any] = contextlib.nullcontext
  shapes: str = ""


def _optax_step(loss_fn: Callable, tx: optax.GradientTransformation) -> Callable:
  """``step(params, opt_state, *batch) -> (params, opt_state, loss)`` of ``loss_fn(p, *batch)``."""
  def step(params, opt_state, *batch):
    loss, grads = jax.value_and_grad(loss_fn)(params, *batch)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss
  return step


def _uniform(seed: int, shape: tuple[int, ...]) -> jax.Array:
  return jax.random.uniform(jax.random.key(seed), shape, jnp.float32)


def essaformer_case(lr_size: int, bands: int = 31, dim: int = 256, scale: int = 4) -> Case:
  """ESSAformer x4 (official width 256), batch 1, L1 + Adam, dropout on in training."""
  from jspectral.superres.essaformer import ESSAformer
  model = ESSAformer(bands=bands, dim=dim, scale=scale)
  lr, hr = _uniform(0, (1, lr_size, lr_size, bands)), _uniform(1, (1, scale * lr_size,
                                                                    scale * lr_size, bands))
  params = jax.jit(model.init)(jax.random.key(2), lr[:, :8, :8])["params"]
  tx = optax.adam(1e-4)

  def loss_fn(p, lr, hr, key):
    out = model.apply({"params": p}, lr, train=True, rngs={"dropout": key})
    return jnp.mean(jnp.abs(out - hr))

  infer = lambda p, lr: model.apply({"params": p}, lr)
  return Case((_optax_step(loss_fn, tx), (params, tx.init(params), lr, hr, jax.random.key(3))),
              (infer, (params, lr)), shapes=f"1 x {lr_size}x{lr_size}x{bands} -> x{scale}, d {dim}")


def rho_pnn_case(size: int = 192) -> Case:
  """One rho-PNN adaptation iteration on one ``size``² tile: both losses, gradients, Adam.

  As :func:`jspectral.pansharpening.rho_pnn.fuse` runs it: x64 on, so the local correlation of
  the spatial loss is float64 (the official ``xcorr_torch`` is float64 too), beta 1.
  """
  from jspectral.pansharpening import rho_pnn
  config = rho_pnn.RhoPNNConfig()
  module = rho_pnn.RPNN()
  with jax.enable_x64(True):
    x = _uniform(0, (1, size, size, 2))
    hs_lr = _uniform(1, (1, size // config.ratio, size // config.ratio, 1))
    params = jax.jit(module.init)(jax.random.key(2), x[:, :16, :16])["params"]
    tx = optax.adam(config.learning_rate)

    def loss_fn(p, x, hs_lr):
      out = module.apply({"params": p}, x)
      return (rho_pnn.spectral_loss(out, hs_lr, config.ratio, config.spectral_kernel_size)
              + rho_pnn.spatial_loss(out, x[..., -1:], config.ratio).astype(jnp.float32))

    opt_state = tx.init(params)
  return Case((_optax_step(loss_fn, tx), (params, opt_state, x, hs_lr)),
              (lambda p, x: module.apply({"params": p}, x), (params, x)),
              context=lambda: jax.enable_x64(True), shapes=f"1 x {size}x{size}x2, lr 1e-5")


def hyperpnn_case(batch: int = 4, size: int = 60, bands: int = 159) -> Case:
  """HyperPNN (toolbox), batch of ``size``² patches, MSE + Adam (the toolbox's training loop)."""
  from jspectral.pansharpening.deep import HyperPNN
  model = HyperPNN(nbands=bands)
  pan, hs = _uniform(0, (batch, size, size, 1)), _uniform(1, (batch, size, size, bands))
  gt = _uniform(2, (batch, size, size, bands))
  params = jax.jit(model.init)(jax.random.key(3), pan, hs)["params"]
  tx = optax.adam(1e-4)

  def loss_fn(p, pan, hs, gt):
    return jnp.mean((model.apply({"params": p}, pan, hs) - gt) ** 2)

  return Case((_optax_step(loss_fn, tx), (params, tx.init(params), pan, hs, gt)),
              (lambda p, pan, hs: model.apply({"params": p}, pan, hs), (params, pan, hs)),
              shapes=f"{batch} x {size}x{size}x{bands} + PAN")


def intl_case(batch: int = 32, size: int = 32) -> Case:
  """INTL ResNet-18 (CIFAR stem, projector 2048-2048-2048): 2 views of ``batch``, SGD momentum.

  Train: both views through backbone + projector in training mode (per-view batch statistics),
  IterNorm + trace loss (:func:`intl_loss`), SGD 0.9 with weight decay. Inference: backbone
  features of one batch in eval mode.
  """
  from jspectral.ssl.intl import intl_resnet18_cifar
  from jspectral.ssl.spectral_transform import intl_loss
  model = intl_resnet18_cifar()
  v1, v2 = _uniform(0, (batch, size, size, 3)), _uniform(1, (batch, size, size, 3))
  variables = jax.jit(lambda k, x: model.init(k, x, train=False))(jax.random.key(2), v1)
  params, stats = variables["params"], variables["batch_stats"]
  tx = optax.chain(optax.add_decayed_weights(1e-4), optax.sgd(0.3, momentum=0.9))

  def step(params, stats, opt_state, v1, v2):
    def loss_fn(p):
      embeddings, new_stats = [], stats
      for view in (v1, v2):
        (z, _), updates = model.apply({"params": p, "batch_stats": new_stats}, view, train=True,
                                      mutable=["batch_stats"])
        embeddings.append(z)
        new_stats = updates["batch_stats"]
      return intl_loss(embeddings)[0], new_stats
    (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), new_stats, opt_state, loss

  infer = lambda p, s, x: model.apply({"params": p, "batch_stats": s}, x, method="features")
  return Case((step, (params, stats, tx.init(params), v1, v2)), (infer, (params, stats, v1)),
              shapes=f"2 views x {batch} x {size}x{size}x3")


def denoiser_case(name: str, batch: int = 4, size: int = 64, bands: int = 31) -> Case:
  """HSDT-M / MAN-M (registry ``name``), batch of ``size``² x ``bands`` cubes, MSE + Adam.

  Training mode: HSDT uses batch statistics (updated running statistics are returned) and draws
  each GSSA branch from the ``"gssa"`` stream, as the official ``train()`` does.
  """
  from jspectral import models
  model = models.create(name)
  noisy, clean = _uniform(0, (batch, size, size, bands)), _uniform(1, (batch, size, size, bands))
  flag = {"train": True} if name.startswith("hsdt") else {}
  variables = jax.jit(lambda k: model.init({"params": k, "gssa": k}, noisy[:1], **flag))(
      jax.random.key(2))
  params, state = variables["params"], {k: v for k, v in variables.items() if k != "params"}
  tx = optax.adam(1e-4)

  def step(params, state, opt_state, noisy, clean, key):
    def loss_fn(p):
      out, updates = model.apply({"params": p, **state}, noisy, rngs={"gssa": key},
                                 mutable=list(state), **flag)
      return jnp.mean((out - clean) ** 2), updates
    (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    grads, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, grads), {**state, **updates}, opt_state, loss

  infer = lambda p, s, x: model.apply({"params": p, **s}, x)
  return Case((step, (params, state, tx.init(params), noisy, clean, jax.random.key(3))),
              (infer, (params, state, noisy)), shapes=f"{batch} x {size}x{size}x{bands}")


CASES: dict[str, Callable[[], Case]] = {
    "essaformer_lr16": lambda: essaformer_case(16),
    "essaformer_lr32": lambda: essaformer_case(32),
    "essaformer_lr48": lambda: essaformer_case(48),
    "rho_pnn": rho_pnn_case,
    "intl_resnet18": intl_case,
    "hyperpnn": hyperpnn_case,
    "hsdt": lambda: denoiser_case("hsdt"),
    "man": lambda: denoiser_case("man"),
}


def _memory(compiled) -> dict[str, int | None]:
  analysis = compiled.memory_analysis()
  return {f"{k}_bytes": getattr(analysis, f"{k}_size_in_bytes", None) if analysis else None
          for k in ("temp", "argument", "output")}


class Built:
  """A case compiled once: ``time(iters)`` returns the per-call seconds of train and inference.

  The train step donates its state (every argument it returns anew: parameters, optimiser and
  model state) and each call starts from the previous one's, as ``fit`` runs it and as the
  official code updates its tensors in place. Inference reads the current state, as the official
  code's ``eval()`` of the same module does: no second copy of the state is held.
  """

  def __init__(self, name: str):
    case = CASES[name]()
    self.context = case.context
    self.info: dict[str, Any] = {"case": name, "shapes": case.shapes}
    self._compiled, self._args = {}, {}
    with self.context():
      for kind in ("train", "infer"):
        fn, args = getattr(case, kind)
        carried = len(jax.eval_shape(fn, *args)) - 1 if kind == "train" else 0
        start = time.perf_counter()
        compiled = jax.jit(fn, donate_argnums=tuple(range(carried))).lower(*args).compile()
        self.info[f"{kind}_compile_s"] = time.perf_counter() - start
        self.info[f"{kind}_memory"] = _memory(compiled)
        self._compiled[kind] = (compiled, carried)
        self._args[kind] = args
      del case, args  # the donated state is referenced nowhere else: each call frees it
      train.release_freed_memory()   # as fit does once its step has compiled
      self.time(1)  # warm-up call of each

  def time(self, iters: int) -> dict[str, list[float]]:
    out = {}
    with self.context():
      for kind, (compiled, carried) in self._compiled.items():
        times = []
        for _ in range(iters):
          args = self._args[kind]
          start = time.perf_counter()
          result = jax.block_until_ready(compiled(*args))
          times.append(time.perf_counter() - start)
          if carried:  # the donated state is gone: the next calls read the new one
            self._args[kind] = (*result[:carried], *args[carried:])
            self._args["infer"] = _following(self._args["infer"], args[:carried],
                                             result[:carried])
        out[f"{kind}_s"] = times
    return out


def _following(tree, old_state, new_state):
  """``tree`` with every leaf that is a leaf of ``old_state`` (the same array) replaced by its
  counterpart in ``new_state``."""
  new = dict(zip(map(id, jax.tree.leaves(old_state)), jax.tree.leaves(new_state), strict=True))
  return jax.tree.map(lambda leaf: new.get(id(leaf), leaf), tree)


def max_rss_bytes() -> int:
  """This process's peak resident set size (``ru_maxrss`` is in KiB on Linux)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def serve(names: list[str]) -> None:
  """Worker loop of the driver: builds the cases, then answers ``time NAME ITERS`` / ``quit``."""
  built = {name: Built(name) for name in names}
  print(json.dumps({"ready": [b.info for b in built.values()]}), flush=True)
  for line in sys.stdin:
    words = line.split()
    if words[:1] == ["time"]:
      print(json.dumps({"case": words[1], **built[words[1]].time(int(words[2]))}), flush=True)
    elif words[:1] == ["quit"]:
      break
  print(json.dumps({"max_rss_bytes": max_rss_bytes()}), flush=True)


class _Worker:
  """One ``--serve`` subprocess speaking the line protocol above."""

  def __init__(self, command: list[str]):
    self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True, bufsize=1)
    self.ready = self._read()["ready"]

  def _read(self) -> dict:
    while True:
      line = self.proc.stdout.readline()
      if not line:
        raise RuntimeError(f"worker {self.proc.args} exited with {self.proc.wait()}")
      if line.startswith("{"):
        return json.loads(line)

  def ask(self, text: str) -> dict:
    self.proc.stdin.write(text + "\n")
    self.proc.stdin.flush()
    return self._read()

  def close(self) -> dict:
    out = self.ask("quit")
    self.proc.wait()
    return out


def drive(names: list[str], official_python: str, mirrors: str, repeats: int,
          iters: int, apart: bool = False) -> list[dict]:
  """Interleaves both sides per case and returns one row per case (min over all calls).

  By default both workers of a case stay alive and take turns. With ``apart`` each turn starts
  its worker and closes it after, so only one side's process exists at a time: on a machine
  whose freed memory goes back to a hypervisor (this VM), the other side's churn of gigabytes
  per call slows the next call of a process that maps its buffers afresh (XLA:CPU), which the
  paired mode measures along with the step (docs/benchmarks.md).
  """
  official_script = str(RESULTS_DIR.parent / "versus_official.py")
  rows = []
  for name in names:
    commands = {"official": [official_python, official_script, "--mirrors", mirrors,
                             "--serve", "--cases", name],
                "jspectral": [sys.executable, "-m", "benchmarks.versus", "--serve",
                              "--cases", name]}
    workers = {} if apart else {side: _Worker(command) for side, command in commands.items()}
    times = {side: {"train_s": [], "infer_s": []} for side in commands}
    built, rss = {}, dict.fromkeys(commands, 0)
    for r in range(repeats):
      for side in (("official", "jspectral") if r % 2 == 0 else ("jspectral", "official")):
        worker = workers.get(side) or _Worker(commands[side])
        built[side] = worker.ready[0]
        answer = worker.ask(f"time {name} {iters}")
        for kind in ("train_s", "infer_s"):
          times[side][kind] += answer[kind]
        if apart:
          rss[side] = max(rss[side], worker.close()["max_rss_bytes"])
    rss.update({side: worker.close()["max_rss_bytes"] for side, worker in workers.items()})
    row = {"case": name, "apart": apart, "glibc_tunables": os.environ.get("GLIBC_TUNABLES", "")}
    for side in commands:
      row[side] = {"build": built[side], **times[side], "max_rss_bytes": rss[side],
                   "train_min_s": min(times[side]["train_s"]),
                   "infer_min_s": min(times[side]["infer_s"])}
    row["train_ratio"] = row["official"]["train_min_s"] / row["jspectral"]["train_min_s"]
    row["infer_ratio"] = row["official"]["infer_min_s"] / row["jspectral"]["infer_min_s"]
    print(json.dumps({k: row[k] for k in ("case", "train_ratio", "infer_ratio")}), flush=True)
    rows.append(row)
  return rows


def table(rows: list[dict]) -> str:
  """The markdown table: min times of both sides, ratios (official / jspectral), peak memory."""
  lines = ["| case | workload | train official / jspectral (s) | ratio | inference official / "
           "jspectral (s) | ratio | max RSS official / jspectral (MB) |", "|---" * 7 + "|"]
  for r in rows:
    o, j = r["official"], r["jspectral"]
    lines.append(f"| `{r['case']}` | {j['build']['shapes']} | {o['train_min_s']:.3g} / "
                 f"{j['train_min_s']:.3g} | {r['train_ratio']:.2f} | {o['infer_min_s']:.3g} / "
                 f"{j['infer_min_s']:.3g} | {r['infer_ratio']:.2f} | "
                 f"{o['max_rss_bytes'] / 2**20:.0f} / {j['max_rss_bytes'] / 2**20:.0f} |")
  return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict]:
  """Command line of this module (see the module docstring)."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
  parser.add_argument("--iters", type=int, default=3, help="timed calls per case (per round)")
  parser.add_argument("--serve", action="store_true", help="driver worker (line protocol)")
  parser.add_argument("--driver", action="store_true", help="interleave with the official side")
  parser.add_argument("--official-python", default="python")
  parser.add_argument("--mirrors", help="directory of the official repositories (driver)")
  parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (driver)")
  parser.add_argument("--apart", action="store_true",
                      help="driver: one side's worker alive at a time (a fresh one per turn)")
  args = parser.parse_args(argv)
  if args.serve:
    serve(args.cases)
    return []
  if args.driver:
    if not args.mirrors:
      parser.error("--mirrors: the driver needs the official repositories' directory")
    rows = drive(args.cases, args.official_python, args.mirrors, args.repeats, args.iters,
                 args.apart)
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "versus_driver.json").write_text(json.dumps(rows, indent=2) + "\n")
    (RESULTS_DIR / "versus_table.md").write_text(table(rows))
    print(table(rows))
    return rows
  rows = []
  for name in args.cases:
    built = Built(name)
    record = {**built.info, **built.time(args.iters), "max_rss_bytes": max_rss_bytes()}
    record.update({f"{k}_min_s": float(np.min(record[f"{k}_s"])) for k in ("train", "infer")})
    print(json.dumps({k: record[k] for k in ("case", "train_min_s", "infer_min_s",
                                             "train_compile_s")}), flush=True)
    rows.append(record)
  print(write_results("versus", rows))
  return rows


if __name__ == "__main__":
  main()
