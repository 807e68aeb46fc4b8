"""Graph augmentations refuse out-of-range probabilities and ratios by name, at any value."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jspectral.data import synthetic_graphs
from jspectral.graph import augment

GRAPH = synthetic_graphs.karate_club()[0]
KEY = jax.random.key(0)
OUT_OF_RANGE = st.one_of(st.floats(max_value=-1e-6, allow_nan=False, allow_infinity=False),
                         st.floats(min_value=1.000001, allow_nan=False, allow_infinity=False))
BY_PROBABILITY = {
    "drop_edges": lambda p: augment.drop_edges(KEY, GRAPH, p),
    "drop_nodes": lambda p: augment.drop_nodes(KEY, GRAPH, p),
    "mask_features": lambda p: augment.mask_features(KEY, GRAPH.nodes, p),
    "graphcl_drop_nodes": lambda p: augment.graphcl_drop_nodes(KEY, GRAPH, ratio=p),
    "graphcl_mask_nodes": lambda p: augment.graphcl_mask_nodes(KEY, GRAPH, ratio=p),
    "graphcl_subgraph": lambda p: augment.graphcl_subgraph(KEY, GRAPH, ratio=p),
}


@pytest.mark.parametrize("name", sorted(BY_PROBABILITY))
@settings(max_examples=10, deadline=None)
@given(p=OUT_OF_RANGE)
def test_out_of_range_probability_is_named(name, p):
  with pytest.raises(ValueError, match=r"(p|ratio): expected a probability in \[0, 1\]"):
    BY_PROBABILITY[name](p)


def test_mask_features_takes_lists_and_integers_as_their_float_copy():
  x = np.arange(12).reshape(4, 3)
  as_float = np.asarray(augment.mask_features(KEY, x.astype(np.float32), 0.5))
  np.testing.assert_array_equal(augment.mask_features(KEY, x.tolist(), 0.5), as_float)
  with pytest.raises(ValueError, match="x: expected node features"):
    augment.mask_features(KEY, np.zeros(4), 0.5)
