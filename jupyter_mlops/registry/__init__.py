"""Model packaging (MLflow's model format), the model registry and the scoring server.

Everything here is imported on demand: ``import jupyter_mlops`` stays cheap.
"""
