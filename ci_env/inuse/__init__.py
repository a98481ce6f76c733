"""Images in use outside the registry (Kubernetes workloads, reference lists): never deleted.

`base` holds the pure value types and the reference normalisation; `kubernetes` and
`listfile` are the sources that fill a `Collector`.
"""
