"""Data helpers: the embedded demo dataset (scikit-image photos) and dataset preparation."""
