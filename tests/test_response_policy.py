"""PressurePolicy: the original design's table by default, validated when replaced."""

from __future__ import annotations

import pytest

from otel_memory.errors import ConfigError
from otel_memory.pressure import MemoryPressure
from otel_memory.response import (
    CACHE_SHRINK,
    GC_COLLECT,
    KNOWN_ACTIONS,
    MALLOC_TRIM,
    POOL_RELEASE,
    PressurePolicy,
)


def test_default_policy_follows_the_original_table() -> None:
    policy = PressurePolicy()
    assert policy.actions_for(MemoryPressure.LOW) == ()
    assert policy.actions_for(MemoryPressure.MODERATE) == (CACHE_SHRINK,)
    high = policy.actions_for(MemoryPressure.HIGH)
    assert GC_COLLECT in high and CACHE_SHRINK in high and POOL_RELEASE in high and MALLOC_TRIM in high
    assert set(policy.actions_for(MemoryPressure.CRITICAL)) >= {GC_COLLECT, CACHE_SHRINK}


def test_a_replaced_policy_is_used_as_given() -> None:
    policy = PressurePolicy(moderate=(), high=(GC_COLLECT,))
    assert policy.actions_for(MemoryPressure.MODERATE) == ()
    assert policy.actions_for(MemoryPressure.HIGH) == (GC_COLLECT,)
    assert policy.actions_for(2) == (GC_COLLECT,)  # type: ignore[arg-type]


def test_an_unknown_action_is_refused_naming_it_and_the_known_ones() -> None:
    with pytest.raises(ConfigError) as error:
        PressurePolicy(high=("defragment",))
    message = str(error.value)
    assert "'defragment'" in message and "high" in message
    assert all(action in message for action in KNOWN_ACTIONS)


def test_actions_must_be_a_tuple() -> None:
    with pytest.raises(ConfigError, match=r"PressurePolicy\.critical=.*not a tuple"):
        PressurePolicy(critical=GC_COLLECT)  # type: ignore[arg-type]
