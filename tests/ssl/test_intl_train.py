"""INTL through jspectral.train.fit: the loss falls, and 8 devices train exactly like 1."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from jspectral import train
from jspectral.nn import resnet
from jspectral.ssl import intl, tasks
from tests.conftest import subprocess_env

# A tiny INTL run shared by the in-process test and the multi-device subprocesses.
TINY_RUN = textwrap.dedent("""
    import numpy as np
    from jspectral import train
    from jspectral.nn import resnet
    from jspectral.ssl import intl, tasks

    def tiny_run(workdir, steps, batch_size=16, num_images=16, lr=0.05, log_every=1):
      rng = np.random.default_rng(0)
      images = rng.uniform(size=(num_images, 8, 8, 3)).astype(np.float32)
      model = intl.INTLNet(resnet.ResNet(stage_sizes=(1, 1, 1, 1), width=4, stem="cifar"),
                           intl.Projector(16, 32))
      task = tasks.INTLTask(model, images, intl.cifar_views(crop_size=8), total_steps=steps)
      config = train.default_config()
      config.update(total_steps=steps, batch_size=batch_size, log_every=log_every,
                    checkpoint_every=10_000, progress=False)
      config.optimizer.update(name="momentum", learning_rate=lr, weight_decay=1e-4)
      return train.fit(task, config, workdir)
""")
exec(TINY_RUN)  # defines tiny_run  # noqa: S102


@pytest.mark.slow  # ~30 s: a 24-step fit
def test_fit_loss_falls(tmp_path):
  result = tiny_run(tmp_path, steps=24, log_every=6)  # noqa: F821
  losses = [r["loss"] for r in result.history if "loss" in r]
  assert np.all(np.isfinite(losses))
  # Same 16 images every step (fresh views): alignment improves, the loss drops by >= 10%.
  assert losses[-1] < 0.9 * losses[0], losses


def _run_on_devices(count: int, workdir: pathlib.Path) -> subprocess.Popen:
  code = TINY_RUN + textwrap.dedent(f"""
      import jax, json
      assert jax.device_count() == {count}
      result = tiny_run({str(workdir)!r}, steps=3)
      print(json.dumps([r["loss"] for r in result.history if "loss" in r]))
  """)
  return subprocess.Popen([sys.executable, "-c", code], env=subprocess_env(count),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_eight_devices_match_one_device(tmp_path):
  """BatchNorm and IterNorm statistics are global: the loss curves of 8 and 1 devices agree."""
  runs = [_run_on_devices(n, tmp_path / f"d{n}") for n in (1, 8)]
  curves = []
  for proc in runs:
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    curves.append(json.loads(out.strip().splitlines()[-1]))
  assert len(curves[0]) == 3
  np.testing.assert_allclose(curves[1], curves[0], rtol=2e-5)


def test_official_schedule_and_ema_momentum():
  schedule = intl.official_schedule(0.3, 10, 100)
  assert float(schedule(0)) == pytest.approx(0.03)
  assert float(schedule(9)) == pytest.approx(0.3)
  assert float(schedule(99)) == pytest.approx(3e-4)
  assert float(schedule(10)) < 0.3 and float(schedule(50)) > float(schedule(60))
  m = [float(intl.ema_momentum_at(t, 100, 0.996)) for t in (0, 50, 100)]
  assert m[0] == pytest.approx(0.996) and m[1] == pytest.approx(0.998) and m[2] == 1.0


def test_task_validates_inputs():
  model = intl.INTLNet(resnet.ResNet(stage_sizes=(1,), width=4), intl.Projector(8, 8))
  with np.testing.assert_raises_regex(ValueError, "views"):
    tasks.INTLTask(model, np.zeros((4, 8, 8, 3)), intl.cifar_views()[:1])
  with np.testing.assert_raises_regex(ValueError, "images"):
    tasks.INTLTask(model, np.zeros((4, 8, 8)))
  assert train.default_config().batch_size > 0
