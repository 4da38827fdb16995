"""Front-end worker processes (``TritonConfig(frontend_workers=N)``, docs/scaling.md).

The serving process keeps the models, their batchers, statistics and model control (``hub``); each worker
parses, checks and encodes HTTP and gRPC on the shared ports and calls the serving process through a
``RemoteDataPlane`` (``remote``) over a socketpair (``channel``, frames from ``wire``); ``process`` is a
worker's entry point.
"""
