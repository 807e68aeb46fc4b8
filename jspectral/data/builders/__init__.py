"""TFDS builders of the real datasets, one module each."""
