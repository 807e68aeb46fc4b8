"""TFDS builders for real datasets, one file per dataset family."""
