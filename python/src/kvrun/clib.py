"""Optional: the C library ``libkvr_lookup`` (installed by kvrun's ``meson install``) through
ctypes, for deployments that want the very code ``kvr lookup`` runs. It reads CSV exports
(formats 1 and 2, rows of any TP degree and mapping: library version 3, ``libkvr_lookup.so.3``;
the structs below mirror its ``kvr_lookup.h``). Found through ``KVR_LOOKUP_LIB`` (a path; empty: do not use one), else the
system's library search.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Optional

from .lookup import Answer, check_ctx
from .table import LookupError_, PathLike, check_clamp, check_key

__all__ = ["available", "CTable"]

_MAX_P = 64


class _Query(ctypes.Structure):
    _fields_ = [("model", ctypes.c_char_p), ("machine", ctypes.c_char_p),
                ("scheme", ctypes.c_char_p), ("method", ctypes.c_char_p), ("p", ctypes.c_int),
                ("ctx_tokens", ctypes.c_uint64), ("clamp", ctypes.c_int),
                ("model_hash", ctypes.c_char_p), ("machine_hash", ctypes.c_char_p),
                ("tp_degree", ctypes.c_int)]


class _Answer(ctypes.Structure):
    _fields_ = [("tokens", ctypes.c_uint64 * _MAX_P), ("p", ctypes.c_int), ("exact", ctypes.c_int),
                ("clamped", ctypes.c_int), ("lo_ctx", ctypes.c_uint64), ("hi_ctx", ctypes.c_uint64),
                ("predicted_ttft_s", ctypes.c_double), ("tp_degree", ctypes.c_int),
                ("n_chunks", ctypes.c_int), ("mapping", ctypes.c_int * _MAX_P)]


def enc(s: Optional[str], what: str = "key") -> Optional[bytes]:
    """A key string as the C library takes it (NULL: any); a NUL byte would cut it short."""
    if s is None:
        return None
    if not isinstance(s, str) or "\0" in s:
        raise LookupError_(f"{what} {s!r} is not a string without NUL bytes")
    return s.encode()


def _find() -> Optional[str]:
    """KVR_LOOKUP_LIB (set but empty: none), else the system's search."""
    env = os.environ.get("KVR_LOOKUP_LIB")
    if env is not None:
        return env or None
    return ctypes.util.find_library("kvr_lookup")


def available() -> bool:
    """Whether libkvr_lookup can be loaded."""
    path = _find()
    if not path:
        return False
    try:
        ctypes.CDLL(path)
    except OSError:
        return False
    return True


class CTable:
    """A CSV table loaded by libkvr_lookup; ``lookup`` answers as :meth:`kvrun.Table.lookup`."""

    def __init__(self, csv_path: PathLike, library: Optional[str] = None) -> None:
        path = library or _find()
        if not path:
            raise LookupError_("libkvr_lookup not found (set KVR_LOOKUP_LIB)")
        self._lib = ctypes.CDLL(path)
        if not hasattr(self._lib, "kvr_lookup_n_rows"):
            raise LookupError_(f"{path}: not libkvr_lookup")
        self._lib.kvr_lookup_load_csv.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p),
                                                  ctypes.c_char_p, ctypes.c_size_t]
        self._lib.kvr_lookup_partition.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Query),
                                                   ctypes.POINTER(_Answer), ctypes.c_char_p,
                                                   ctypes.c_size_t]
        self._lib.kvr_lookup_free.argtypes = [ctypes.c_void_p]
        self._t = ctypes.c_void_p()
        err = ctypes.create_string_buffer(1024)
        if self._lib.kvr_lookup_load_csv(os.fsencode(csv_path), ctypes.byref(self._t), err, 1024):
            raise LookupError_(err.value.decode())

    def close(self) -> None:
        if self._t:
            self._lib.kvr_lookup_free(self._t)
            self._t = ctypes.c_void_p()

    def __del__(self) -> None:
        self.close()

    def lookup(self, model: str, machine: str, p: int, ctx_tokens: int, clamp: bool = False,
               scheme: str = "kvr", method: str = "hier", model_hash: Optional[str] = None,
               machine_hash: Optional[str] = None, tp: int = 1) -> Answer:
        """As :meth:`kvrun.Table.lookup`: ``tp`` names the layout's t (its rows only)."""
        # every value checked here as Table.lookup checks it: ctypes would wrap what does not
        # fit silently, and a scheme None is C's NULL (the default) where Table refuses it
        p, tp = check_key(model, machine, p, scheme, method, model_hash, machine_hash, tp)
        ctx_tokens = check_ctx(ctx_tokens)
        check_clamp(clamp)
        q = _Query(enc(model, "model"), enc(machine, "machine"), enc(scheme, "scheme"),
                   enc(method, "method"), p, ctx_tokens, int(clamp), enc(model_hash, "model_hash"),
                   enc(machine_hash, "machine_hash"), tp)
        a, err = _Answer(), ctypes.create_string_buffer(1024)
        if self._lib.kvr_lookup_partition(self._t, ctypes.byref(q), ctypes.byref(a), err, 1024):
            raise LookupError_(err.value.decode())
        neighbours = (a.lo_ctx,) if a.lo_ctx == a.hi_ctx else (a.lo_ctx, a.hi_ctx)
        return Answer(ctx_tokens, tuple(a.tokens[:a.n_chunks]), tuple(a.mapping[:a.p]),
                      bool(a.exact), bool(a.clamped), neighbours,
                      None if a.clamped else a.predicted_ttft_s, a.tp_degree)
