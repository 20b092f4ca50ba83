"""Importers from other tracking systems into a jupyter-mlops store.

They read their source directly (files, SQL) and write through the
:class:`~jupyter_mlops.tracking.store.TrackingStore` interface only.
"""
