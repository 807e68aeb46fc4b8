"""jspectral.ssl."""
