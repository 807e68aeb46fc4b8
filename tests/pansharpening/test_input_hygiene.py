"""Classical methods take array-likes the documented way: integer scenes (the toolbox's uint16
files) fuse exactly as their float copies, and NaN/Inf, empty or misshaped inputs are named."""

from __future__ import annotations

import numpy as np
import pytest

from jspectral.pansharpening import classical

RNG = np.random.default_rng(0)
LR = RNG.integers(200, 4000, (8, 8, 3)).astype(np.uint16)
PAN = RNG.integers(200, 4000, (48, 48)).astype(np.uint16)
UP = np.repeat(np.repeat(LR, 6, 0), 6, 1)
FAST = ("EXP", "GSA", "BT-H", "AWLP", "BDSD-PC")   # the MTF-GLP family needs LR sides >= 31


@pytest.mark.parametrize("name", FAST)
def test_integer_scene_fuses_as_its_float_copy(name):
  method = classical.METHODS[name]
  as_int = method(LR, PAN, 6, hs_up=UP)
  as_float = method(*(a.astype(np.float32) for a in (LR, PAN)), 6, hs_up=UP.astype(np.float32))
  np.testing.assert_allclose(as_int, as_float, rtol=1e-6)


BIG_LR = RNG.uniform(200, 4000, (32, 32, 10)).astype(np.float32)   # every method's own minimum
BIG_PAN = RNG.uniform(200, 4000, (192, 192)).astype(np.float32)


def damaged(kind):
  lr, pan = BIG_LR, BIG_PAN
  if kind == "nan":
    lr = lr.copy()
    lr[1, 2, 0] = np.nan
  elif kind == "inf":
    pan = pan.copy()
    pan[3, 3] = np.inf
  elif kind == "empty":
    lr = np.zeros((0, 32, 10), np.float32)
  elif kind == "rank":
    lr = lr[..., 0]
  return lr, pan


@pytest.mark.parametrize("name", sorted(classical.METHODS))
@pytest.mark.parametrize("kind, match", [("nan", "hs_lr: contains NaN"), ("inf", "pan: contains"),
                                         ("empty", "hs_lr: empty"), ("rank", "hs_lr")])
def test_bad_scenes_are_named_errors(name, kind, match):
  lr, pan = damaged(kind)
  with pytest.raises(ValueError, match=match):
    classical.METHODS[name](lr, pan, 6)
