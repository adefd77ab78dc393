"""Card-fraud detection MLOps library."""
