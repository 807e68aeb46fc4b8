"""Every public index takes array-likes the documented way: integer data score as their float copy,
and bad input (rank, shape, bands, NaN/Inf, empty, complex) is a named ValueError/TypeError."""

from __future__ import annotations

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jspectral import metrics
from jspectral.metrics import pansharpening as ps

PAIR_INDICES = {
    "psnr": lambda p, t: metrics.psnr(p, t, data_range=255.0),
    "sam": metrics.sam,
    "rmse": metrics.rmse,
    "cc": metrics.cc,
    "ergas": lambda p, t: metrics.ergas(p, t, 4),
    "ssim": lambda p, t: metrics.ssim(p, t, data_range=255.0, window="uniform", win_size=3),
    "ps.ergas": lambda p, t: ps.ergas(p, t, 4),
    "ps.sam": ps.sam,
    "ps.q_avg": lambda p, t: ps.q_avg(p, t, block_size=4),
}
SETTINGS = settings(max_examples=12, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
integer_images = hnp.arrays(np.uint8, (8, 8, 3), elements=st.integers(1, 255))


@pytest.mark.parametrize("name", sorted(PAIR_INDICES))
@SETTINGS
@given(pred=integer_images, target=integer_images)
def test_integer_input_scores_as_its_float_copy(name, pred, target):
  index = PAIR_INDICES[name]
  np.testing.assert_allclose(index(pred, target),
                             index(pred.astype(np.float32), target.astype(np.float32)),
                             rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("name", sorted(PAIR_INDICES))
def test_lists_are_accepted(name):
  rng = np.random.default_rng(0)
  pred, target = (rng.integers(1, 255, (8, 8, 3)).astype(np.float32) for _ in range(2))
  index = PAIR_INDICES[name]
  np.testing.assert_allclose(index(pred.tolist(), target.tolist()), index(pred, target),
                             rtol=1e-6)


def bad_pairs():
  good = np.ones((8, 8, 3), np.float32)
  nan = good.copy()
  nan[2, 3, 1] = np.nan
  inf = good.copy()
  inf[0, 0, 0] = np.inf
  return {
      "rank": (np.ones((8, 8), np.float32), good, ValueError, "pred|fused"),
      "shape": (good, np.ones((8, 7, 3), np.float32), ValueError, "shape"),
      "bands": (good, np.ones((8, 8, 4), np.float32), ValueError, "band"),
      "nan": (nan, good, ValueError, "NaN"),
      "inf": (good, inf, ValueError, "NaN or Inf"),
      "empty": (np.ones((0, 8, 3), np.float32), np.ones((0, 8, 3), np.float32), ValueError,
                "empty"),
      "complex": (good.astype(np.complex64), good, TypeError, "dtype"),
  }


@pytest.mark.parametrize("name", sorted(PAIR_INDICES))
@pytest.mark.parametrize("case", sorted(bad_pairs()))
def test_bad_input_is_a_named_error(name, case):
  pred, target, error, match = bad_pairs()[case]
  with pytest.raises(error, match=match):
    PAIR_INDICES[name](pred, target)
