"""jspectral.nn."""
