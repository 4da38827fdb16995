"""The fake ensemble backend of the spine tests, as a module defining ``BACKEND`` (see spine_support)."""

from spine_support import ENSEMBLE_BACKEND

BACKEND = ENSEMBLE_BACKEND
