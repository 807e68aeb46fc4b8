"""jspectral.superres."""
