"""Configuration: checked at construction, parsed from MEMORY_* variables, clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_memory.config import ENVIRONMENT, MemoryLimitConfig, MemoryManagementConfig
from otel_memory.errors import ConfigError

_FLOAT_VARIABLES = sorted(v for v, (_s, _n, kind) in ENVIRONMENT.items() if kind is float)
_INT_VARIABLES = sorted(v for v, (_s, _n, kind) in ENVIRONMENT.items() if kind is int)
_BOOL_VARIABLES = sorted(v for v, (_s, _n, kind) in ENVIRONMENT.items() if kind is bool)


def _field(config: MemoryManagementConfig, variable: str) -> object:
    scope, name, _kind = ENVIRONMENT[variable]
    return getattr(config.monitor_config if scope == "monitor" else config, name)


def test_defaults_are_the_original_designs() -> None:
    config = MemoryManagementConfig()
    assert config.monitor_config.monitoring_interval_ms == 5000
    assert config.database_connection_pool_size == 20
    assert config.llm_client_pool_size == 10
    assert config.leak_detection_threshold_mb == 100
    assert config.monitor_config.max_heap_mb is None   # discovered
    assert MemoryManagementConfig.from_env({}) == config


def test_the_issue_variables_are_all_read() -> None:
    for variable in ("MEMORY_MAX_HEAP_MB", "MEMORY_MAX_STACK_MB", "MEMORY_WARNING_THRESHOLD_MB",
                     "MEMORY_CRITICAL_THRESHOLD_MB", "MEMORY_DB_POOL_SIZE", "MEMORY_LLM_POOL_SIZE",
                     "MEMORY_HTTP_POOL_SIZE", "MEMORY_MONITORING_INTERVAL_MS",
                     "MEMORY_LEAK_THRESHOLD_MB"):
        assert variable in ENVIRONMENT


def test_from_env_reads_every_kind() -> None:
    config = MemoryManagementConfig.from_env({
        "MEMORY_MAX_HEAP_MB": "2048", "MEMORY_WARNING_THRESHOLD_MB": " 1536 ",
        "MEMORY_CRITICAL_THRESHOLD_MB": "1792.5", "MEMORY_DB_POOL_SIZE": "7",
        "MEMORY_ENABLE_LEAK_DETECTION": "off", "MEMORY_ENABLE_USS": "Yes",
        "MEMORY_MONITORING_INTERVAL_MS": "250", "MEMORY_LEAK_THRESHOLD_MB": "",
    })
    assert config.monitor_config.max_heap_mb == 2048
    assert config.monitor_config.warning_threshold_mb == 1536
    assert config.monitor_config.critical_threshold_mb == 1792.5
    assert config.database_connection_pool_size == 7
    assert config.enable_leak_detection is False and config.enable_uss is True
    assert config.monitor_config.monitoring_interval_ms == 250
    assert config.leak_detection_threshold_mb == 100   # empty keeps the default


def _assert_names(error: ConfigError, variable: str, value: str) -> None:
    message = str(error)
    assert variable in message, message
    assert value.strip() in message, message
    assert "expected" in message or "must be" in message, message


_not_a_number = st.text(min_size=1, max_size=12).filter(
    lambda text: text.strip() != "" and not _is_float(text.strip()))


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@settings(max_examples=150, deadline=None)
@given(variable=st.sampled_from(_FLOAT_VARIABLES + _INT_VARIABLES), raw=_not_a_number)
def test_a_non_number_names_the_variable(variable: str, raw: str) -> None:
    with pytest.raises(ConfigError) as error:
        MemoryManagementConfig.from_env({variable: raw})
    assert variable in str(error.value) and repr(raw.strip()) in str(error.value)
    assert "not a" in str(error.value)


@settings(max_examples=100, deadline=None)
@given(variable=st.sampled_from(_INT_VARIABLES),
       raw=st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()))
def test_a_fraction_is_not_a_whole_number(variable: str, raw: float) -> None:
    with pytest.raises(ConfigError, match=re.escape(variable)):
        MemoryManagementConfig.from_env({variable: repr(raw)})


@settings(max_examples=150, deadline=None)
@given(variable=st.sampled_from(_FLOAT_VARIABLES + _INT_VARIABLES),
       value=st.integers(max_value=-1, min_value=-10**9))
def test_a_negative_value_names_the_variable(variable: str, value: int) -> None:
    with pytest.raises(ConfigError) as error:
        MemoryManagementConfig.from_env({variable: str(value)})
    _assert_names(error.value, variable, str(value))


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("variable", _FLOAT_VARIABLES)
def test_nan_and_infinity_are_refused(variable: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(variable)):
        MemoryManagementConfig.from_env({variable: raw})


@settings(max_examples=60, deadline=None)
@given(variable=st.sampled_from(_BOOL_VARIABLES),
       raw=st.text(min_size=1, max_size=8).filter(
           lambda t: t.strip() != "" and t.strip().lower() not in
           ("1", "0", "true", "false", "yes", "no", "on", "off")))
def test_a_bad_boolean_names_the_variable(variable: str, raw: str) -> None:
    with pytest.raises(ConfigError) as error:
        MemoryManagementConfig.from_env({variable: raw})
    assert variable in str(error.value) and "true or false" in str(error.value)


_mb = st.integers(min_value=1, max_value=10**6)


@settings(max_examples=200, deadline=None)
@given(warning=_mb, critical=_mb, maximum=_mb)
def test_thresholds_out_of_order_are_refused(warning: int, critical: int, maximum: int) -> None:
    env = {"MEMORY_WARNING_THRESHOLD_MB": str(warning), "MEMORY_CRITICAL_THRESHOLD_MB": str(critical),
           "MEMORY_MAX_HEAP_MB": str(maximum)}
    if warning < critical <= maximum:
        config = MemoryManagementConfig.from_env(env)
        assert config.monitor_config.warning_threshold_mb == warning
        assert config.monitor_config.critical_threshold_mb == critical
        return
    with pytest.raises(ConfigError) as error:
        MemoryManagementConfig.from_env(env)
    message = str(error.value)
    assert "MEMORY_" in message and "must be" in message, message
    assert "threshold_mb=" not in message.replace("THRESHOLD_MB=", ""), message


@settings(max_examples=200, deadline=None)
@given(max_heap=st.one_of(st.none(), st.floats(1, 1e6)),
       warning=st.one_of(st.none(), st.floats(1, 1e6)),
       gc_mb=st.one_of(st.none(), st.floats(1, 1e6)),
       critical=st.one_of(st.none(), st.floats(1, 1e6)),
       interval=st.integers(10, 10**6), db=st.integers(1, 1000), leak=st.floats(0.5, 1e5),
       pooling=st.booleans(), uss=st.booleans())
def test_valid_configurations_round_trip_through_the_environment(
        max_heap: float | None, warning: float | None, gc_mb: float | None, critical: float | None,
        interval: int, db: int, leak: float, pooling: bool, uss: bool) -> None:
    try:
        expected = MemoryManagementConfig(
            monitor_config=MemoryLimitConfig(max_heap_mb=max_heap, warning_threshold_mb=warning,
                                             gc_pressure_threshold_mb=gc_mb,
                                             critical_threshold_mb=critical,
                                             monitoring_interval_ms=interval),
            database_connection_pool_size=db, leak_detection_threshold_mb=leak,
            enable_object_pooling=pooling, enable_uss=uss)
    except ConfigError:
        return   # out of order; covered above
    env = {}
    for variable in ENVIRONMENT:
        value = _field(expected, variable)
        if value is not None:
            env[variable] = ("true" if value else "false") if isinstance(value, bool) else repr(value)
    assert MemoryManagementConfig.from_env(env) == expected


@pytest.mark.parametrize(("kwargs", "field", "expected"), [
    ({"max_heap_mb": "512"}, "max_heap_mb", "not a number"),
    ({"max_heap_mb": 0}, "max_heap_mb", "> 0"),
    ({"max_heap_mb": True}, "max_heap_mb", "not a number"),
    ({"monitoring_interval_ms": 5}, "monitoring_interval_ms", ">= 10"),
    ({"monitoring_interval_ms": 1.5}, "monitoring_interval_ms", "not a whole number"),
    ({"hysteresis_mb": -1}, "hysteresis_mb", ">= 0"),
    ({"enable_gc_pressure": "yes"}, "enable_gc_pressure", "True or False"),
    ({"warning_threshold_mb": 900, "critical_threshold_mb": 800}, "warning_threshold_mb", "below"),
    ({"warning_threshold_mb": 500, "gc_pressure_threshold_mb": 400}, "gc_pressure_threshold_mb",
     "at or above"),
    ({"critical_threshold_mb": 500, "gc_pressure_threshold_mb": 600}, "gc_pressure_threshold_mb",
     "at or below"),
    ({"max_heap_mb": 500, "critical_threshold_mb": 600}, "critical_threshold_mb", "max_heap_mb"),
])
def test_limit_config_errors_name_field_value_and_expectation(
        kwargs: dict[str, object], field: str, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        MemoryLimitConfig(**kwargs)   # type: ignore[arg-type]
    message = str(error.value)
    assert field in message and expected in message
    assert repr(kwargs[field]) in message


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"database_connection_pool_size": 0}, "database_connection_pool_size"),
    ({"llm_client_pool_size": -2}, "llm_client_pool_size"),
    ({"enable_leak_detection": 1}, "enable_leak_detection"),
    ({"leak_detection_threshold_mb": -5}, "leak_detection_threshold_mb"),
    ({"monitor_config": {"max_heap_mb": 1}}, "monitor_config"),
])
def test_management_config_errors_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        MemoryManagementConfig(**kwargs)   # type: ignore[arg-type]


@pytest.mark.parametrize(("field", "unit"), [
    ("leak_detection_interval_s", "of seconds"),
    ("gc_min_interval_s", "of seconds"),
    ("leak_detection_threshold_mb", "of megabytes"),
])
def test_a_non_number_in_code_names_the_right_unit(field: str, unit: str) -> None:
    with pytest.raises(ConfigError) as error:
        MemoryManagementConfig(**{field: "soon"})   # type: ignore[arg-type]
    assert str(error.value) == f"{field}='soon' is not a number; expected a number {unit}"


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        MemoryLimitConfig(max_heap_mb=-1)


def test_every_variable_is_documented() -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()
    for variable, (_scope, name, _kind) in ENVIRONMENT.items():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{variable}` |")), None)
        assert row is not None, f"{variable} is missing from docs/configuration.md"
        assert f"`{name}`" in row or f"`monitor_config.{name}`" in row
