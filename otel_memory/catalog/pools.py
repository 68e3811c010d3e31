"""Object pools and database connection pools (semantic-convention names for the latter).

Example::

    from otel_memory.catalog import MEMORY_POOL_SIZE
    MEMORY_POOL_SIZE.unit      # '{object}'
"""

from __future__ import annotations

from ._spec import WAIT_BUCKETS_S, Group, Instrument, MetricSpec
from .attributes import ATTR_DB_POOL_NAME, ATTR_DB_STATE, ATTR_POOL_DESTROY_REASON, ATTR_POOL_NAME

# --- object pools -----------------------------------------------------------------------

MEMORY_POOL_SIZE = MetricSpec(
    "memory.pool.size", Instrument.OBSERVABLE_GAUGE, "{object}",
    "Objects the pool holds, idle and borrowed.", Group.POOL, (ATTR_POOL_NAME,),
    meaning="The original design's pool size.",
)
MEMORY_POOL_BORROWED = MetricSpec(
    "memory.pool.borrowed", Instrument.OBSERVABLE_GAUGE, "{object}",
    "Objects currently lent out.", Group.POOL, (ATTR_POOL_NAME,),
)
MEMORY_POOL_IDLE = MetricSpec(
    "memory.pool.idle", Instrument.OBSERVABLE_GAUGE, "{object}",
    "Objects waiting in the pool to be borrowed.", Group.POOL, (ATTR_POOL_NAME,),
)
MEMORY_POOL_MAX = MetricSpec(
    "memory.pool.max", Instrument.OBSERVABLE_GAUGE, "{object}",
    "The most objects the pool may hold.", Group.POOL, (ATTR_POOL_NAME,),
)
MEMORY_POOL_PENDING_REQUESTS = MetricSpec(
    "memory.pool.pending_requests", Instrument.OBSERVABLE_GAUGE, "{request}",
    "Borrowers waiting for an object.", Group.POOL, (ATTR_POOL_NAME,),
)
MEMORY_POOL_BORROWS = MetricSpec(
    "memory.pool.borrows", Instrument.OBSERVABLE_COUNTER, "{borrow}",
    "Objects lent out.", Group.POOL, (ATTR_POOL_NAME,),
)
MEMORY_POOL_TIMEOUTS = MetricSpec(
    "memory.pool.timeouts", Instrument.OBSERVABLE_COUNTER, "{timeout}",
    "Borrows that gave up after the timeout.", Group.POOL, (ATTR_POOL_NAME,),
)
MEMORY_POOL_REJECTIONS = MetricSpec(
    "memory.pool.rejections", Instrument.OBSERVABLE_COUNTER, "{request}",
    "Borrows refused at once because max_waiting borrowers already waited.", Group.POOL,
    (ATTR_POOL_NAME,),
)
MEMORY_POOL_CREATED = MetricSpec(
    "memory.pool.created", Instrument.OBSERVABLE_COUNTER, "{object}",
    "Objects the factory created.", Group.POOL, (ATTR_POOL_NAME,),
)
MEMORY_POOL_CREATE_ERRORS = MetricSpec(
    "memory.pool.create_errors", Instrument.OBSERVABLE_COUNTER, "{error}",
    "Factory calls that raised.", Group.POOL, (ATTR_POOL_NAME,),
)
MEMORY_POOL_DESTROYED = MetricSpec(
    "memory.pool.destroyed", Instrument.OBSERVABLE_COUNTER, "{object}",
    "Objects the pool destroyed, by reason.", Group.POOL, (ATTR_POOL_NAME, ATTR_POOL_DESTROY_REASON),
    meaning="Reasons: health_check, max_lifetime, idle_timeout, pressure, discarded, closed.",
)
MEMORY_POOL_LEAKED_BORROWS = MetricSpec(
    "memory.pool.leaked_borrows", Instrument.OBSERVABLE_COUNTER, "{borrow}",
    "Borrowed objects never returned: reclaimed by the garbage collector.", Group.POOL,
    (ATTR_POOL_NAME,),
)
MEMORY_POOL_WAIT_TIME = MetricSpec(
    "memory.pool.wait_time", Instrument.HISTOGRAM, "s",
    "Time a borrow waited for an object (only borrows that had to wait).", Group.POOL,
    (ATTR_POOL_NAME,), buckets=WAIT_BUCKETS_S,
)
MEMORY_POOL_CREATE_TIME = MetricSpec(
    "memory.pool.create_time", Instrument.HISTOGRAM, "s",
    "Time the factory took to create an object.", Group.POOL, (ATTR_POOL_NAME,),
    buckets=WAIT_BUCKETS_S,
)
MEMORY_POOL_USE_TIME = MetricSpec(
    "memory.pool.use_time", Instrument.HISTOGRAM, "s",
    "Time an object was held by its borrower (when use timing is enabled).", Group.POOL,
    (ATTR_POOL_NAME,), buckets=WAIT_BUCKETS_S,
)

# --- database connection pools (semantic conventions) -----------------------------------

DB_CLIENT_CONNECTION_COUNT = MetricSpec(
    "db.client.connection.count", Instrument.OBSERVABLE_UP_DOWN_COUNTER, "{connection}",
    "The number of connections that are currently in the state described by the state attribute.",
    Group.DB, (ATTR_DB_POOL_NAME, ATTR_DB_STATE),
)
DB_CLIENT_CONNECTION_MAX = MetricSpec(
    "db.client.connection.max", Instrument.OBSERVABLE_UP_DOWN_COUNTER, "{connection}",
    "The maximum number of open connections allowed.", Group.DB, (ATTR_DB_POOL_NAME,),
)
DB_CLIENT_CONNECTION_IDLE_MAX = MetricSpec(
    "db.client.connection.idle.max", Instrument.OBSERVABLE_UP_DOWN_COUNTER, "{connection}",
    "The maximum number of idle open connections allowed.", Group.DB, (ATTR_DB_POOL_NAME,),
)
DB_CLIENT_CONNECTION_IDLE_MIN = MetricSpec(
    "db.client.connection.idle.min", Instrument.OBSERVABLE_UP_DOWN_COUNTER, "{connection}",
    "The minimum number of idle open connections allowed.", Group.DB, (ATTR_DB_POOL_NAME,),
)
DB_CLIENT_CONNECTION_PENDING_REQUESTS = MetricSpec(
    "db.client.connection.pending_requests", Instrument.OBSERVABLE_UP_DOWN_COUNTER, "{request}",
    "The number of current pending requests for an open connection.", Group.DB,
    (ATTR_DB_POOL_NAME,),
)
DB_CLIENT_CONNECTION_TIMEOUTS = MetricSpec(
    "db.client.connection.timeouts", Instrument.OBSERVABLE_COUNTER, "{timeout}",
    "The number of connection timeouts that have occurred trying to obtain a connection from the pool.",
    Group.DB, (ATTR_DB_POOL_NAME,),
)
DB_CLIENT_CONNECTION_CREATE_TIME = MetricSpec(
    "db.client.connection.create_time", Instrument.HISTOGRAM, "s",
    "The time it took to create a new connection.", Group.DB, (ATTR_DB_POOL_NAME,),
    buckets=WAIT_BUCKETS_S,
)
DB_CLIENT_CONNECTION_WAIT_TIME = MetricSpec(
    "db.client.connection.wait_time", Instrument.HISTOGRAM, "s",
    "The time it took to obtain an open connection from the pool.", Group.DB, (ATTR_DB_POOL_NAME,),
    buckets=WAIT_BUCKETS_S,
)
DB_CLIENT_CONNECTION_USE_TIME = MetricSpec(
    "db.client.connection.use_time", Instrument.HISTOGRAM, "s",
    "The time between borrowing a connection and returning it to the pool.", Group.DB,
    (ATTR_DB_POOL_NAME,), buckets=WAIT_BUCKETS_S,
)

SPECS: tuple[MetricSpec, ...] = (
    MEMORY_POOL_SIZE,
    MEMORY_POOL_BORROWED,
    MEMORY_POOL_IDLE,
    MEMORY_POOL_MAX,
    MEMORY_POOL_PENDING_REQUESTS,
    MEMORY_POOL_BORROWS,
    MEMORY_POOL_TIMEOUTS,
    MEMORY_POOL_REJECTIONS,
    MEMORY_POOL_CREATED,
    MEMORY_POOL_CREATE_ERRORS,
    MEMORY_POOL_DESTROYED,
    MEMORY_POOL_LEAKED_BORROWS,
    MEMORY_POOL_WAIT_TIME,
    MEMORY_POOL_CREATE_TIME,
    MEMORY_POOL_USE_TIME,
    DB_CLIENT_CONNECTION_COUNT,
    DB_CLIENT_CONNECTION_MAX,
    DB_CLIENT_CONNECTION_IDLE_MAX,
    DB_CLIENT_CONNECTION_IDLE_MIN,
    DB_CLIENT_CONNECTION_PENDING_REQUESTS,
    DB_CLIENT_CONNECTION_TIMEOUTS,
    DB_CLIENT_CONNECTION_CREATE_TIME,
    DB_CLIENT_CONNECTION_WAIT_TIME,
    DB_CLIENT_CONNECTION_USE_TIME,
)
