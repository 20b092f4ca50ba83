"""``jupyter mlops bench``: the scale figures (issue 18) measured against a running deployment.

Dependency-free (the standard library only), so it runs wherever jupyter-mlops is installed: a
workload (:mod:`.workloads`) talks to the server's REST API like a client (:mod:`.http`) and
reports timings (:mod:`.stats`); :mod:`.cli` is the command. The benches of a source checkout
(``bench/``) start their own servers and put MLflow beside ours; this one measures yours.
"""
