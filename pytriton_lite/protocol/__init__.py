"""Wire formats of the v2 protocol: pure functions, no sockets, no threads."""
