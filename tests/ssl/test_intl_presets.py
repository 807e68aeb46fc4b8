"""INTL's paper presets carry each Table 1 row's own recipe (specs/intl.md section 4.2)."""

import pytest

from experiments import runner
from experiments.common import intl_network

RECIPES = {  # preset -> (source, batch, lr = base * batch / 256, wd, decay 1-D, precision, epochs)
    "paper": ("cifar10", 256, 0.3, 1e-4, True, "float32", 1000),
    "paper:cifar100": ("cifar100", 256, 0.3, 1e-4, True, "float32", 1000),
    "paper:in100": ("in100", 128, 0.25, 2.5e-5, False, "bfloat16", 400),
}


@pytest.mark.parametrize("experiment", ["ssl_intl", "ssl_spectral_transforms"])
@pytest.mark.parametrize("preset", list(RECIPES))
def test_each_variant_is_its_own_recipe(experiment, preset):
  source, batch, lr, wd, decay_1d, precision, epochs = RECIPES[preset]
  config = runner.build_config(experiment, preset, [])
  t = config.train
  assert config.data.source == source
  assert (t.batch_size, t.optimizer.weight_decay, t.precision) == (batch, wd, precision)
  assert t.optimizer.learning_rate == pytest.approx(lr)
  assert t.optimizer.get("decay_1d", True) is decay_1d
  steps_per_epoch = {"cifar10": 50_000, "cifar100": 50_000, "in100": 126_689}[source] // batch
  assert t.total_steps == epochs * steps_per_epoch
  assert t.schedule.warmup_steps == 2 * steps_per_epoch


def test_imagenet_variant_uses_the_imagenet_stem_at_224():
  config = runner.build_config("ssl_intl", "paper:in100", [])
  assert config.image_size == 224 and intl_network(config).backbone.stem == "imagenet"
  assert intl_network(runner.build_config("ssl_intl", "paper", [])).backbone.stem == "cifar"
