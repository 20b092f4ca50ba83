"""What runs in kernels and scripts: the fluent API, the buffered writer, the
spool, the HTTP store and source capture. Submodules are imported on use."""
