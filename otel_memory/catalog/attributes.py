"""Attribute keys of the catalogue's metrics, semantic-convention names where they exist.

Example::

    from otel_memory.catalog import ATTR_POOL_NAME    # 'pool.name'
"""

ATTR_GC_GENERATION = "cpython.gc.generation"
ATTR_PAGING_FAULT_TYPE = "system.paging.fault.type"
ATTR_LIMIT_SOURCE = "memory.limit.source"
ATTR_THRESHOLD_KIND = "memory.threshold.kind"
ATTR_PSI_SCOPE = "memory.psi.scope"
ATTR_PRESSURE_STATE = "memory.pressure.state"
ATTR_PRESSURE_ACTION = "memory.pressure.action"
ATTR_ADMISSION_POINT = "memory.admission.point"
ATTR_HTTP_STATUS_CODE = "http.response.status_code"
ATTR_POOL_NAME = "pool.name"
ATTR_POOL_DESTROY_REASON = "pool.destroy.reason"
ATTR_DB_POOL_NAME = "db.client.connection.pool.name"
ATTR_DB_STATE = "db.client.connection.state"
ATTR_CACHE_NAME = "cache.name"
ATTR_CACHE_RESULT = "cache.result"
ATTR_CACHE_EVICTION_REASON = "cache.eviction.reason"
ATTR_CACHE_LOAD_RESULT = "cache.load.result"
ATTR_LEAK_KIND = "memory.leak.kind"
ATTR_LEAK_ALERT_REASON = "memory.leak.alert.reason"
