"""Experiment configs (``experiments/configs/<name>.py``) and the runner that executes them."""
