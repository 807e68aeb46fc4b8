"""Training-step parity of NSM with the official JAX code: three Adam steps in float64.

``parity/nsm_*_steps.npz`` were generated outside the project (docs/parity.md, "NSM training
steps"): ASK-Berkeley/Neural-Spectral-Methods 090e7a1 on jax 0.4.13 / flax 0.7.0 / optax 0.1.5 with
``jax_enable_x64``; ``FNO`` of ``src/model/fno/spectral.py`` (NSM, h 8, L 2, relu) under the
official ``Trainer`` (Adam, ``exp`` schedule over 100 iterations) and its ``src/train.py`` ``step``
unchanged, the problem's prior ``sample`` replaced by one fixed batch of 4 coefficient arrays
(Dirichlet Poisson modes 8 x 8; reaction nu = 0.01 modes 6 x 16; the NSM-Fourier ablation
``--fourier`` on reaction nu = 0.05, modes 6 x 16);
initial parameters (cast to float64), the batch, the per-step losses and the parameters after
each of the first three steps.
"""

from __future__ import annotations

import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jspectral import train
from jspectral.pde import nsm, problems
from jspectral.pde.tasks import OperatorTask

PARITY = pathlib.Path(__file__).parent / "parity"
CASES = {  # case -> (problem, NSM-Fourier ablation)
    "nsm_poisson_dirichlet_steps": (problems.PoissonDirichlet(res=16), False),
    "nsm_reaction_steps": (problems.ReactionDiffusion(nu=0.01, rho=5.0, res=64), False),
    "nsm_reaction_fourier_steps": (problems.ReactionDiffusion(nu=0.05, rho=5.0, res=64), True),
}


def _params(pack, prefix: str) -> dict:
  tree: dict = {}
  for key in pack.files:
    if key.startswith(prefix):
      *parents, leaf = key.removeprefix(prefix).split("/")
      node = tree
      for p in parents:
        node = node.setdefault(p, {})
      node[leaf] = jnp.asarray(pack[key], jnp.float64)
  return tree


@pytest.mark.parametrize("case", sorted(CASES))
def test_nsm_train_steps_match_the_official_trainer(case):
  with jax.enable_x64(True):
    pack = np.load(PARITY / f"{case}.npz")
    problem, fourier = CASES[case]
    model = nsm.NSM(problem=problem, hdim=int(pack["hdim"]), depth=int(pack["depth"]),
                    mode=tuple(int(m) for m in pack["mode"]), fourier=fourier)
    phi = jnp.asarray(pack["phi"], jnp.float64)
    task = OperatorTask(model, np.asarray(pack["phi"][:1]), np.zeros((1, 3, 3, 1)))
    config = train.default_config()
    config.optimizer.update(name="adam", learning_rate=float(pack["learning_rate"]))
    config.schedule.update(name="exponential", decay_factor=1e-3)   # official "exp"
    tx, _ = train.make_optimizer(config, total_steps=int(pack["total_steps"]))
    params = _params(pack, "init/")
    ts = train.TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), {},
                          jax.random.key(0))
    step = jax.jit(functools.partial(train.train_step, loss_fn=task.loss, tx=tx))
    losses = []
    for k in (1, 2, 3):
      ts, metrics, ok = step(ts, {"phi": phi})
      assert bool(ok)
      losses.append(float(metrics["loss"]))
      official = _params(pack, f"step{k}/")
      for path, value in jax.tree_util.tree_leaves_with_path(official):
        ours = functools.reduce(lambda t, p: t[p.key], path, ts.params)
        # atol: a bias whose gradient is round-off (a unit dead at every collocation node) takes
        # an Adam step lr * g / (|g| + eps) ~ 1e-13 whose sign follows FFT round-off.
        np.testing.assert_allclose(np.asarray(ours), np.asarray(value), rtol=1e-9, atol=1e-12,
                                   err_msg=f"{case} step {k} {jax.tree_util.keystr(path)}")
    np.testing.assert_allclose(losses, pack["losses"], rtol=1e-10)
    # The steps moved the parameters: the comparison is not of three copies of the start.
    moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), ts.params, params)
    assert max(jax.tree.leaves(moved)) > 1e-4
