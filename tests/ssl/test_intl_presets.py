"""INTL's paper presets carry each Table 1 row's and ImageNet script's own recipe (specs/intl.md
section 4.2, winci-ai/INTL scripts/*.sh)."""

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


IMAGENET = {  # preset -> (epochs, lr, EMA m0, views, linear lr_classifier, semi lr_backbone)
    "paper:in1k": (800, 0.3, 0.0, 2, 0.2, 0.006),
    "paper:in1k_m": (100, 0.5, 0.996, 6, 0.4, 0.004),
    "paper:in1k_m200": (200, 0.4, 0.996, 6, 0.4, 0.004),
    "paper:in1k_m400": (400, 0.4, 0.996, 6, 0.4, 0.004),
    "paper:in1k_m800": (800, 0.3, 0.996, 6, 0.4, 0.004),
}


@pytest.mark.parametrize("preset", list(IMAGENET))
def test_imagenet_scripts(preset):
  from experiments.common import intl_views

  epochs, lr, m0, views, lr_classifier, lr_backbone = IMAGENET[preset]
  config = runner.build_config("ssl_intl", preset, [])
  t = config.train
  steps_per_epoch = 1_281_167 // 256
  assert config.data.source == "in1k" and t.batch_size == 256
  assert t.total_steps == epochs * steps_per_epoch
  assert t.schedule.warmup_steps == 2 * steps_per_epoch and t.schedule.min_lr_ratio == 1e-3
  assert t.optimizer.learning_rate == pytest.approx(lr)      # base lr * 256 / 256
  assert (t.optimizer.weight_decay, t.optimizer.decay_1d, t.precision) == (1e-5, False,
                                                                           "bfloat16")
  assert config.ema_momentum == m0
  assert [v.crop_size for v in intl_views(config)] == ([224, 224, 192, 160, 128, 96]
                                                       if views == 6 else [224, 224])
  assert intl_views(config)[-1].scale == ((0.086, 0.429) if views == 6 else (0.08, 1.0))
  assert config.linear_eval.lr_classifier == lr_classifier and config.linear_eval.epochs == 100
  assert tuple(config.semi.percents) == (1, 10) and config.semi.epochs == 20
  assert (config.semi.lr_backbone, config.semi.lr_classifier) == (lr_backbone, 0.2)
  net = intl_network(config)
  assert net.backbone.block_cls.__name__ == "Bottleneck" and net.backbone.zero_init_residual
  assert (net.projector.hidden, net.projector.features) == (8192, 8192)


def test_bad_arch_and_no_semi_supervised_run_outside_imagenet_1k():
  with pytest.raises(ValueError, match="model.arch"):
    intl_network(runner.build_config("ssl_intl", "paper", ["model.arch=resnet34"]))
  assert tuple(runner.build_config("ssl_intl", "paper:in100", []).semi.percents) == ()
