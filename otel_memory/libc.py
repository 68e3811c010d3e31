"""glibc's malloc through ctypes: its statistics (``mallinfo2()``) and ``malloc_trim(0)``.

Both are looked up among the symbols the process has already loaded (``ctypes.CDLL(None)``),
which include the C library's: no ``find_library`` (it runs ``ldconfig`` in a subprocess) and
no file opened. Where the C library lacks them (musl, macOS, glibc < 2.33 for mallinfo2) the
loaders return None. The leak detector reads the statistics and trims after its census; the
pressure response trims under pressure.

Example::

    read = glibc_mallinfo2()
    read().free_bytes if read else None       # freed bytes malloc keeps
    trim = glibc_malloc_trim()
    trim() if trim else None                  # 1 when memory was given back
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


@dataclass(frozen=True)
class MallocStats:
    """What glibc's ``mallinfo2()`` says of the malloc heap, in bytes.

    Example::

        MallocStats(in_use_bytes=48 * MB, free_bytes=12 * MB, mmapped_bytes=8 * MB)
    """

    in_use_bytes: int
    """Bytes handed out by malloc and not freed (``uordblks + hblkhd``)."""
    free_bytes: int
    """Freed bytes malloc keeps in its arenas (``fordblks``); malloc_trim can return most."""
    mmapped_bytes: int
    """Bytes of allocations served by their own mmap (``hblkhd``), in use."""


def glibc_mallinfo2() -> Callable[[], MallocStats | None] | None:
    """A reader of ``mallinfo2()`` when the C library has it (glibc >= 2.33), else None."""
    try:
        libc = ctypes.CDLL(None)   # the symbols the process has loaded, the C library's among them
        function = libc.mallinfo2
    except (OSError, AttributeError, TypeError):   # TypeError: Windows takes no CDLL(None)
        return None
    function.restype = _MallInfo2
    function.argtypes = []

    def read() -> MallocStats | None:
        info = function()
        return MallocStats(in_use_bytes=int(info.uordblks + info.hblkhd),
                           free_bytes=int(info.fordblks), mmapped_bytes=int(info.hblkhd))

    return read


def glibc_malloc_trim() -> Callable[[], int] | None:
    """``malloc_trim(0)`` when the C library has it (glibc), else None; the call returns 1
    when memory was given back."""
    try:
        function = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):   # TypeError: Windows takes no CDLL(None)
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int

    def trim() -> int:
        return int(function(0))

    return trim
