"""jspectral.pde."""
