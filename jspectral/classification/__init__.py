"""jspectral.classification."""
