"""The catalogue as a whole: every entry in order, and look-ups by name and by group.

Example::

    by_name("memory.pool.size").unit      # '{object}'
    [spec.name for spec in in_group(Group.CACHE)]
"""

from __future__ import annotations

from collections.abc import Iterator

from . import admission, caches, leaks, pools, runtime
from ._spec import Group, MetricSpec

ALL: tuple[MetricSpec, ...] = (
    *runtime.SPECS, *admission.SPECS, *pools.SPECS, *caches.SPECS, *leaks.SPECS)
_BY_NAME = {spec.name: spec for spec in ALL}


def by_name(name: str) -> MetricSpec:
    """The catalogue entry for an OpenTelemetry metric name; KeyError names what is known."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name!r} is not in the otel_memory metric catalogue") from None


def in_group(*groups: Group) -> Iterator[MetricSpec]:
    """The entries of the given groups, in catalogue order."""
    return (spec for spec in ALL if spec.group in groups)
