"""What both example test modules need to run an example as a user would: its environment and free ports."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List

from pytriton_lite.testing import find_free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


def example_env() -> Dict[str, str]:
    """The environment an example runs in: this checkout importable, unbuffered output, no config overrides."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    for key in [k for k in env if k.startswith("PYTRITON_TRITON_CONFIG_")]:
        del env[key]  # the examples must not pick up a developer's config overrides
    return env


def free_ports(count: int) -> List[int]:
    """``count`` distinct ports that were free a moment ago."""
    ports: List[int] = []
    for _ in range(50):
        port = find_free_port()
        if port not in ports:
            ports.append(port)
        if len(ports) == count:
            return ports
    raise RuntimeError(f"could not find {count} distinct free ports")
