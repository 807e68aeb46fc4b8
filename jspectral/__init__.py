"""jspectral: eleven published spectral learning systems as pure JAX functions and Flax modules."""

__version__ = "0.1.0"
