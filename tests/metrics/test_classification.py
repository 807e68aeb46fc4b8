"""Classification indices against scikit-learn and hand-computed cases."""

import jax
import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score
from sklearn.metrics import confusion_matrix as sk_confusion

from jspectral import metrics


@pytest.fixture(scope="module")
def labels():
  rng = np.random.default_rng(0)
  y = rng.integers(0, 5, 500)
  pred = np.where(rng.uniform(size=500) < 0.7, y, rng.integers(0, 5, 500))
  return y, pred


def test_against_sklearn(labels):
  y, pred = labels
  cm = jax.jit(metrics.confusion_matrix, static_argnums=2)(y, pred, 5)
  np.testing.assert_array_equal(cm, sk_confusion(y, pred, labels=range(5)))
  assert_allclose(metrics.overall_accuracy(cm), np.mean(y == pred), rtol=1e-6)
  assert_allclose(metrics.average_accuracy(cm), balanced_accuracy_score(y, pred), rtol=1e-6)
  assert_allclose(metrics.kappa(cm), cohen_kappa_score(y, pred), rtol=1e-5)


def test_closed_forms():
  y = np.array([0, 0, 1, 1])
  perfect = metrics.confusion_matrix(y, y, 2)
  assert metrics.overall_accuracy(perfect) == 1 and metrics.kappa(perfect) == 1
  # Always predicting class 0: OA 0.5, AA 0.5, kappa 0 (chance agreement).
  constant = metrics.confusion_matrix(y, np.zeros(4, int), 2)
  assert_allclose([metrics.overall_accuracy(constant), metrics.average_accuracy(constant),
                   metrics.kappa(constant)], [0.5, 0.5, 0.0])


def test_ignore_index_and_absent_classes():
  y = np.array([0, 0, 2, 255])
  pred = np.array([0, 1, 2, 0])
  cm = metrics.confusion_matrix(y, pred, 3, ignore_index=255)
  assert int(cm.sum()) == 3
  assert np.isnan(metrics.per_class_accuracy(cm)[1])  # class 1 never in the ground truth
  assert_allclose(metrics.average_accuracy(cm), (0.5 + 1.0) / 2)
  # scikit-learn report convention: class 1 is predicted, never true -> counts as 0.
  assert_allclose(metrics.average_accuracy(cm, predicted_absent_as_zero=True), (0.5 + 0 + 1) / 3)


def test_bad_input():
  with pytest.raises(ValueError, match="labels, predictions"):
    metrics.confusion_matrix(np.zeros(3, int), np.zeros(4, int), 2)
  with pytest.raises(ValueError, match="confusion"):
    metrics.kappa(np.zeros((2, 3)))
