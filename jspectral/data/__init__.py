"""jspectral.data."""
