"""TFDS builders, one file per real dataset (each tested on a tiny file in the real format)."""
