"""Training job tests: this folder is on sys.path for ``jobhelpers``."""
