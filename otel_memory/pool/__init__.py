"""Object pools that export their own metrics: ObjectPool (threads) and AsyncObjectPool (asyncio).

Both share one state machine (``_core.PoolCore``) and one set of borrow and return protocols
(``_flow``, generators that yield the steps needing user code or a wait); the front ends only
differ in how they carry a step out: a call and a parked lock, or an await. See
``sync.ObjectPool`` for the options.

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
