"""jspectral.pansharpening."""
