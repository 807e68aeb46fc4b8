"""The package's import-time setting: XLA:CPU convolutions run by Eigen."""

from __future__ import annotations

import importlib.metadata

import jax
import jax.numpy as jnp
import pytest

from jspectral import YNN_CONVOLUTIONS_OFF, prefer_eigen_convolutions


def test_the_flag_joins_the_existing_flags_once():
  env = {"XLA_FLAGS": "--xla_backend_optimization_level=1"}
  assert prefer_eigen_convolutions(env, "0.10.2")
  assert env["XLA_FLAGS"] == f"--xla_backend_optimization_level=1 {YNN_CONVOLUTIONS_OFF}"
  assert not prefer_eigen_convolutions(env, "0.10.2")
  assert env["XLA_FLAGS"].count("ynn_fusion_type") == 1
  empty = {}
  assert prefer_eigen_convolutions(empty, "0.9.2") and empty["XLA_FLAGS"] == YNN_CONVOLUTIONS_OFF


@pytest.mark.parametrize("version", ["0.9.1", "0.8.3", "0.11.0", "1.0.0"])
def test_jaxlib_releases_without_the_known_flag_are_left_alone(version):
  env = {}
  assert not prefer_eigen_convolutions(env, version) and env == {}


def test_a_user_choice_of_ynn_fusions_is_kept():
  env = {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type=individual_convolution"}
  assert not prefer_eigen_convolutions(env, "0.10.2")
  assert env["XLA_FLAGS"] == "--xla_cpu_experimental_ynn_fusion_type=individual_convolution"


@pytest.mark.skipif(not prefer_eigen_convolutions({}, importlib.metadata.version("jaxlib")),
                    reason="this jaxlib is outside the releases known to have the flag")
def test_convolutions_in_this_process_do_not_go_to_ynnpack():
  """Without the flag XLA:CPU (jaxlib 0.10.2) wraps this convolution in a ``__ynn_fusion``."""
  conv = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
  shapes = jax.ShapeDtypeStruct((32, 32, 32, 64), jnp.float32), jax.ShapeDtypeStruct(
      (3, 3, 64, 64), jnp.float32)
  text = jax.jit(conv).lower(*shapes).compile().as_text()
  assert "convolution" in text and "__ynn_fusion" not in text
