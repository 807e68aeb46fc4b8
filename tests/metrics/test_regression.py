"""HyperView challenge score, its per-batch epoch mean and RMSE against NumPy and closed cases."""

import jax
import numpy as np
import pytest

from jspectral.metrics import regression


def _data(n=11, t=4, seed=0):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(n, t)), rng.normal(size=(n, t)), rng.normal(size=t)


def _numpy_score(pred, target, baseline):
  """The challenge definition written out: per target SSE(model) / SSE(baseline), then mean."""
  ratios = [np.mean((pred[:, j] - target[:, j]) ** 2) / np.mean((baseline[j] - target[:, j]) ** 2)
            for j in range(target.shape[1])]
  return np.array(ratios), float(np.mean(ratios))


def test_score_matches_numpy_with_and_without_baseline():
  pred, target, baseline = _data()
  ratios, score = _numpy_score(pred, target, baseline)
  np.testing.assert_allclose(regression.normalised_mse(pred, target, baseline), ratios, rtol=1e-5)
  np.testing.assert_allclose(jax.jit(regression.challenge_score)(pred, target, baseline), score,
                             rtol=1e-5)
  _, zero = _numpy_score(pred, target, np.zeros(4))   # the official zero baseline
  np.testing.assert_allclose(regression.challenge_score(pred, target), zero, rtol=1e-5)


def test_closed_cases_baseline_scores_one_perfect_scores_zero():
  _, target, baseline = _data()
  constant = np.broadcast_to(baseline, target.shape)
  np.testing.assert_allclose(regression.normalised_mse(constant, target, baseline), np.ones(4),
                             rtol=1e-6)
  assert float(regression.challenge_score(np.zeros_like(target), target)) == pytest.approx(1.0)
  assert float(regression.challenge_score(target, target, baseline)) == 0.0
  # Halving the error of the baseline on every sample scores 1/4.
  halfway = (constant + target) / 2
  assert float(regression.challenge_score(halfway, target, baseline)) == pytest.approx(0.25)
  assert float(regression.batch_mean_score(constant, target, baseline, batch_size=3)) == \
      pytest.approx(1.0)


def test_batch_mean_is_the_size_weighted_mean_of_per_batch_scores():
  pred, target, baseline = _data(n=11)
  expected, n = 0.0, len(pred)
  for start in range(0, n, 4):   # batches of 4, 4, 3 (Lightning weights by batch size)
    part = slice(start, start + 4)
    expected += len(pred[part]) * _numpy_score(pred[part], target[part], baseline)[1]
  got = jax.jit(regression.batch_mean_score, static_argnames="batch_size")(
      pred, target, baseline, batch_size=4)
  np.testing.assert_allclose(got, expected / n, rtol=1e-5)
  # One batch holding the whole split is the challenge score; batches of 1 differ from it.
  whole = regression.challenge_score(pred, target, baseline)
  np.testing.assert_allclose(regression.batch_mean_score(pred, target, baseline, batch_size=32),
                             whole, rtol=1e-6)
  assert abs(float(regression.batch_mean_score(pred, target, baseline, batch_size=1)) -
             float(whole)) > 1e-3


def test_rmse_is_over_every_value():
  pred, target, _ = _data()
  np.testing.assert_allclose(regression.rmse(pred, target),
                             np.sqrt(np.mean((pred - target) ** 2)), rtol=1e-6)
  assert float(regression.rmse(pred.tolist(), pred.tolist())) == 0.0


def test_integer_targets_score_as_floats():
  target = np.array([[1, 2], [3, 5], [2, 2]])
  pred = np.array([[1, 1], [2, 5], [2, 3]])
  np.testing.assert_allclose(regression.challenge_score(pred, target),
                             regression.challenge_score(pred * 1.0, target * 1.0), rtol=1e-7)


def test_bad_inputs_name_the_argument():
  pred, target, baseline = _data()
  with pytest.raises(ValueError, match=r"pred, target: expected equal shapes \(N, T\)"):
    regression.challenge_score(pred, target[:, :3])
  with pytest.raises(ValueError, match="pred, target"):
    regression.rmse(pred[0], target[0])
  with pytest.raises(ValueError, match=r"baseline: expected shape \(4,\)"):
    regression.normalised_mse(pred, target, baseline[:2])
  with pytest.raises(ValueError, match="batch_size: expected >= 1"):
    regression.batch_mean_score(pred, target, batch_size=0)
