"""Where runs execute: one module per backend, each registering a `Backend` (see base.py)."""

from workers.backends.base import Backend, BackendError, Option, backends, get_backend

__all__ = ["Backend", "BackendError", "Option", "backends", "get_backend"]
