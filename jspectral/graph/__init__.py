"""jspectral.graph."""
