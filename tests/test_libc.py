"""glibc's malloc through ctypes: mallinfo2() statistics and malloc_trim(0), on real memory."""

from __future__ import annotations

import ctypes

import pytest

from otel_memory import libc
from otel_memory.leak.native import process_rss
from otel_memory.libc import glibc_mallinfo2, glibc_malloc_trim

MB = 1024 * 1024


def test_glibc_mallinfo2_sees_a_native_allocation_and_its_release() -> None:
    read = glibc_mallinfo2()
    if read is None:
        pytest.skip("the C library has no mallinfo2 (not glibc >= 2.33)")
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    before = read()
    address = libc.malloc(64 * MB)
    during = read()
    libc.free(address)
    after = read()
    assert before is not None and during is not None and after is not None
    assert during.in_use_bytes - before.in_use_bytes >= 64 * MB
    assert during.mmapped_bytes - before.mmapped_bytes >= 64 * MB      # above the mmap threshold
    assert during.in_use_bytes - after.in_use_bytes >= 64 * MB


def test_glibc_malloc_trim_returns_freed_heap_memory_to_the_system() -> None:
    trim = glibc_malloc_trim()
    if trim is None or glibc_mallinfo2() is None:
        pytest.skip("the C library is not glibc")
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    blocks = [libc.malloc(64 * 1024) for _ in range(1600)]      # 100 MB of heap, not mmap
    for block in blocks:
        libc.memset(block, 1, 64 * 1024)                          # resident
    guard = libc.malloc(64 * 1024)                                # the heap's top stays in use
    for block in blocks:
        libc.free(block)
    before = process_rss()
    trim()
    after = process_rss()
    libc.free(guard)
    assert before is not None and after is not None
    assert before - after >= 50 * MB, (before / MB, after / MB)


@pytest.mark.parametrize("error", [OSError, AttributeError, TypeError])
def test_without_a_c_library_to_load_there_is_no_reader_and_no_error(
        monkeypatch: pytest.MonkeyPatch, error: type[Exception]) -> None:
    # TypeError is what Windows raises for ctypes.CDLL(None); musl lacks the symbols
    def refuse(name: object) -> object:
        raise error("no C library here")

    monkeypatch.setattr(libc.ctypes, "CDLL", refuse)
    assert libc.glibc_mallinfo2() is None and libc.glibc_malloc_trim() is None
