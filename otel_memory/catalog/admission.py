"""Responses to pressure: GC and malloc_trim actions, reclaimed bytes, admission control.

Example::

    from otel_memory.catalog import MEMORY_ADMISSION_REJECTIONS
"""

from __future__ import annotations

from ._spec import WAIT_BUCKETS_S, Group, Instrument, MetricSpec
from .attributes import ATTR_ADMISSION_POINT, ATTR_HTTP_STATUS_CODE, ATTR_PRESSURE_ACTION, ATTR_PRESSURE_STATE

# --- pressure response (gc, trim, admission) --------------------------------------------

MEMORY_PRESSURE_ACTIONS = MetricSpec(
    "memory.pressure.actions", Instrument.OBSERVABLE_COUNTER, "{action}",
    "Actions taken in response to memory pressure, by kind.", Group.RESPONSE,
    (ATTR_PRESSURE_ACTION,),
    meaning="gc_collect, malloc_trim, cache_shrink, pool_release and reject, each counted "
    "when the pressure policy runs it.",
)
MEMORY_PRESSURE_RECLAIMED = MetricSpec(
    "memory.pressure.reclaimed", Instrument.OBSERVABLE_COUNTER, "By",
    "Memory given back to the operating system by pressure actions.", Group.RESPONSE,
    (ATTR_PRESSURE_ACTION,),
    meaning="RSS before minus RSS after each gc.collect() and malloc_trim(0), when positive.",
)
MEMORY_ADMISSION_REJECTIONS = MetricSpec(
    "memory.admission.rejections", Instrument.OBSERVABLE_COUNTER, "{request}",
    "Work refused because memory pressure was critical.", Group.RESPONSE, (ATTR_ADMISSION_POINT,),
    meaning="MemoryManager.admit() refusals, by where they happened (admit, decorator, asgi, "
    "wsgi).",
)
MEMORY_REQUEST_DURATION = MetricSpec(
    "memory.request.duration", Instrument.HISTOGRAM, "s",
    "Duration of requests served through the admission middleware, by pressure level.",
    Group.RESPONSE, (ATTR_PRESSURE_STATE, ATTR_HTTP_STATUS_CODE), buckets=WAIT_BUCKETS_S,
    meaning="Wall time of each request the ASGI/WSGI middleware saw, with the pressure level "
    "when it began: latency by pressure level.",
)

SPECS: tuple[MetricSpec, ...] = (
    MEMORY_PRESSURE_ACTIONS,
    MEMORY_PRESSURE_RECLAIMED,
    MEMORY_ADMISSION_REJECTIONS,
    MEMORY_REQUEST_DURATION,
)
