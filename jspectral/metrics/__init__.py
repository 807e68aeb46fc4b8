"""jspectral.metrics."""
