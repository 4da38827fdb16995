"""PyTriton's ``pytriton.proxy`` import path (only ``types`` is public)."""
