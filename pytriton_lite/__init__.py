"""pytriton_lite: PyTriton's API and Triton's v2 protocol, served from your own process."""

__version__ = "0.1.0"
