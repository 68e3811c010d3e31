"""Object pools that export their own metrics: ObjectPool (threads) and AsyncObjectPool (asyncio).

Both share one state machine (``_core.PoolCore``); the front ends only differ in how they wait
and how they call user hooks. See ``sync.ObjectPool`` for the options.

Example::

    from otel_memory.pool import ObjectPool

    pool = ObjectPool("buffers", lambda: bytearray(65536), 8)
    with pool.borrow() as buffer:
        buffer[:4] = b"data"
"""

from ._core import DESTROY_REASONS, PoolStats
from .asyncio_pool import AsyncObjectPool
from .handle import AsyncPooled, Pooled
from .sync import ObjectPool

__all__ = ["DESTROY_REASONS", "AsyncObjectPool", "AsyncPooled", "ObjectPool", "PoolStats", "Pooled"]
