"""jspectral.denoising."""
