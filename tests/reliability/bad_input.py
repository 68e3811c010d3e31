"""Bad input: hypothesis over every MEMORY_* variable and over the constructors that take sizes,
budgets, intervals, keys, DSNs, URLs and keys.

Every refusal must be a ConfigError or ValueError whose message names the variable or argument
and says what was expected (and never quotes a secret); everything accepted must work. A
misspelt MEMORY_ variable must get one warning suggesting the right name.

Example::

    row = bad_input(SHORT)
    row.figures["refusals"], row.figures["violations"]
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import threading
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import MeterProvider

from otel_memory.cache import SmartCache
from otel_memory.config import ENVIRONMENT, MemoryManagementConfig
from otel_memory.errors import ConfigError, PoolTimeout
from otel_memory.pool import AsyncObjectPool, ObjectPool

from .faults import captured
from .profile import Profile, Row

SECRET = "Pw-7q!x9-reliability"
PROVIDER = MeterProvider()

#: Values of every kind a person or a template puts in an environment variable.
_RAW = st.one_of(
    st.sampled_from(["-1", "0", "", "   ", " 512 ", "1e3", " 1e3", "1e400", "9" * 40, "-0", "0.0",
                     "nan", "NaN", "inf", "-inf", "1_000", "0x10", "512MB", "true", "yes", "off",
                     "1,5", "\t7\n", "10.5", "1e-9", "+5", "²", "٣"]),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats().map(repr),
    st.text(max_size=12),
)

#: Values of every kind passed to a size, a budget or a number of seconds.
_NUMBERS = st.one_of(
    st.sampled_from([0, -1, 1, 2, 0.5, -0.0, math.nan, math.inf, -math.inf, 10**30, 1e300, 1e-300,
                     True, False, None, "5", b"5", [5], 2**63]),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(),
)


class Tally:
    """Outcomes of one property: accepted, refused well, and the violations (first few kept)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.violations: list[str] = []

    def refused(self, error: BaseException, names: tuple[str, ...], secret: str | None = None) -> None:
        message = str(error)
        problems = []
        if not isinstance(error, (ConfigError, ValueError)):
            problems.append(f"a {type(error).__name__}, not a ConfigError or ValueError")
        if not any(name in message for name in names):
            problems.append(f"does not name {' or '.join(names)}")
        if "expected" not in message and "must be" not in message:
            problems.append("does not say what was expected")
        if secret and secret in message:
            problems.append("quotes the secret")
        if problems:
            self.violation(f"{type(error).__name__}({message[:160]!r}): {', '.join(problems)}")
        else:
            self.counts["refused"] += 1

    def accepted(self) -> None:
        self.counts["accepted"] += 1

    def violation(self, text: str) -> None:
        self.counts["violations"] += 1
        if len(self.violations) < 8 and text not in self.violations:
            self.violations.append(text)


def _explore(profile: Profile, test: Callable[[], None], share: float = 1.0) -> None:
    settings(max_examples=max(20, int(profile.examples * share)), deadline=None, database=None,
             suppress_health_check=list(HealthCheck))(test)()


def environment(profile: Profile, tally: Tally) -> None:
    """One bad value in one variable, then several variables at once (thresholds in any order)."""

    @given(variable=st.sampled_from(sorted(ENVIRONMENT)), raw=_RAW)
    def one(variable: str, raw: str) -> None:
        try:
            config = MemoryManagementConfig.from_env({variable: raw})
        except Exception as error:  # noqa: BLE001 - judged by the tally
            tally.refused(error, (variable,))
            return
        _check_accepted(config, tally, f"{variable}={raw!r}")

    @given(values=st.dictionaries(st.sampled_from(sorted(ENVIRONMENT)), _RAW, min_size=2, max_size=6))
    def several(values: dict[str, str]) -> None:
        try:
            config = MemoryManagementConfig.from_env(values)
        except Exception as error:  # noqa: BLE001
            tally.refused(error, tuple(values))
            return
        _check_accepted(config, tally, repr(values))

    _explore(profile, one)
    _explore(profile, several, 0.5)


def _check_accepted(config: MemoryManagementConfig, tally: Tally, what: str) -> None:
    """An accepted configuration must be usable: intervals a thread can wait, sizes an OTLP
    point can carry, a limit of at least 1 MB."""
    monitor = config.monitor_config
    numbers = [monitor.max_heap_mb, monitor.warning_threshold_mb, monitor.critical_threshold_mb,
               monitor.gc_pressure_threshold_mb, monitor.hysteresis_mb, config.leak_detection_threshold_mb]
    problems = []
    if any(n is not None and not (math.isfinite(n) and n * 1024 * 1024 < 2**63) for n in numbers):
        problems.append("a size that is not finite or does not fit in an int64")
    if not 10 <= monitor.monitoring_interval_ms <= 86_400_000:
        problems.append("a monitoring interval no thread can wait")
    if not 0 < config.leak_detection_interval_s <= 86_400:
        problems.append("a leak interval no thread can wait")
    if monitor.max_heap_mb is not None and monitor.max_heap_mb < 1:
        problems.append("a limit below 1 MB")
    if problems:
        tally.violation(f"accepted {what}: {', '.join(problems)}")
    else:
        tally.accepted()


def misspelt(profile: Profile, tally: Tally) -> None:
    """A variable with one character dropped, doubled or changed gets one warning naming it and
    suggesting the right one."""

    @given(variable=st.sampled_from(sorted(ENVIRONMENT)), data=st.data())
    def typo(variable: str, data: st.DataObject) -> None:
        tail = len("MEMORY_")
        at = data.draw(st.integers(tail, len(variable) - 1))
        kind = data.draw(st.sampled_from(["drop", "double", "swap"]))
        if kind == "drop":
            wrong = variable[:at] + variable[at + 1:]
        elif kind == "double":
            wrong = variable[:at] + variable[at] + variable[at:]
        else:
            wrong = variable[:at] + ("X" if variable[at] != "X" else "Y") + variable[at + 1:]
        if wrong in ENVIRONMENT:
            return
        with captured() as logs:
            MemoryManagementConfig.from_env({wrong: "512"})
        suggestions = [m for m in logs.messages if wrong in m and "did you mean" in m]
        if len(logs.records) == 1 and len(suggestions) == 1 and any(
                f"did you mean {name}?" in suggestions[0] for name in ENVIRONMENT):
            tally.counts["warned"] += 1
            tally.counts["warned_right_name"] += f"did you mean {variable}?" in suggestions[0]
        else:
            tally.violation(f"{wrong}: {logs.messages}")

    with captured() as logs:
        MemoryManagementConfig.from_env({"MEMORY_MAX_HEAP_MBB": "512"})
    if logs.messages != ["otel_memory: MEMORY_MAX_HEAP_MBB is not a variable otel_memory reads "
                         "(ignored); did you mean MEMORY_MAX_HEAP_MB?"]:
        tally.violation(f"MEMORY_MAX_HEAP_MBB: {logs.messages}")
    _explore(profile, typo, 0.5)


def pools(profile: Profile, tally: Tally) -> None:
    """ObjectPool and AsyncObjectPool with any sizes, timeouts and hooks."""
    options = ("max_size", "min_idle", "timeout", "max_waiting", "max_lifetime", "idle_timeout",
               "leak_detection_threshold", "factory", "health_check")

    @given(kind=st.sampled_from(["sync", "async"]), option=st.sampled_from(options), value=_NUMBERS)
    def construct(kind: str, option: str, value: Any) -> None:
        arguments: dict[str, Any] = {"max_size": 2, "factory": list}
        arguments[option] = value
        max_size, factory = arguments.pop("max_size"), arguments.pop("factory")
        cls: Any = ObjectPool if kind == "sync" else AsyncObjectPool
        try:
            pool = cls("reliability.bad", factory, max_size, meter_provider=PROVIDER, **arguments)
        except Exception as error:  # noqa: BLE001
            tally.refused(error, (option,))
            return
        try:
            if kind == "sync":
                with pool.borrow(timeout=0.5) as obj:
                    obj.append(1)
                pool.close()
            else:
                async def use() -> None:
                    async with pool.borrow(timeout=0.5) as obj:
                        obj.append(1)
                    await pool.close()

                asyncio.run(use())
            if pool.housekeeping_interval is not None and not 0 < pool.housekeeping_interval < math.inf:
                raise AssertionError(f"housekeeping every {pool.housekeeping_interval} s")
        except Exception as error:  # noqa: BLE001
            tally.violation(f"accepted {kind} {option}={value!r}, then {type(error).__name__}: {error}")
            return
        tally.accepted()

    # timeouts that end: a borrow told to wait forever (math.inf) or as long as the pool's
    # default (None: 30 s) would wait that long
    waits = _NUMBERS.filter(lambda t: t is not None and (not isinstance(t, (int, float))
                                                         or isinstance(t, bool) or math.isnan(t) or t < 0.05))

    @given(timeout=waits)
    def borrow_timeout(timeout: Any) -> None:
        pool: ObjectPool[list[int]] = ObjectPool("reliability.bad", list, 1, meter_provider=PROVIDER)
        held = pool.acquire()      # the next borrow has to wait: its timeout is used
        try:
            with pool.borrow(timeout=timeout):
                tally.violation(f"borrow(timeout={timeout!r}) lent an object that was lent")
        except PoolTimeout:
            tally.accepted()
        except Exception as error:  # noqa: BLE001
            tally.refused(error, ("timeout",))
        finally:
            held.release()
            pool.close()

    _explore(profile, construct, 2.0)
    _explore(profile, borrow_timeout, 0.3)


def caches(profile: Profile, tally: Tally) -> None:
    """SmartCache with any entry limits, budgets, TTLs, names, sizers and policies; unhashable keys."""
    options = ("max_entries", "max_memory_mb", "ttl_seconds", "name", "sizer", "timer", "pressure_policy")

    @given(option=st.sampled_from(options), value=_NUMBERS)
    def construct(option: str, value: Any) -> None:
        arguments: dict[str, Any] = {"max_entries": 10, "max_memory_mb": 1, "ttl_seconds": 60}
        arguments[option] = value
        try:
            cache: SmartCache[Any, Any] = SmartCache(None, meter_provider=PROVIDER, **arguments)
        except Exception as error:  # noqa: BLE001
            tally.refused(error, (option,))
            return
        try:
            cache.insert("k", "v")
            cache.get("k")
        except Exception as error:  # noqa: BLE001
            tally.violation(f"accepted {option}={value!r}, then {type(error).__name__}: {error}")
            return
        tally.accepted()

    cache: SmartCache[Any, Any] = SmartCache(None, 10, 1, 60, name="reliability.keys",
                                             meter_provider=PROVIDER)
    keys = st.one_of(st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=2), st.integers(),
                                                                          max_size=2),
                     st.sets(st.integers(), max_size=2), st.builds(bytearray, st.binary(max_size=4)),
                     st.tuples(st.integers(), st.lists(st.integers(), max_size=2)))

    @given(key=keys, operation=st.sampled_from(["get", "insert", "pop", "in", "get_or_load", "[]"]))
    def unhashable(key: Any, operation: str) -> None:
        calls: dict[str, Callable[[], Any]] = {
            "get": lambda: cache.get(key), "insert": lambda: cache.insert(key, 1),
            "pop": lambda: cache.pop(key, None), "in": lambda: key in cache,
            "get_or_load": lambda: cache.get_or_load(key, lambda k: 1), "[]": lambda: cache[key]}
        try:
            calls[operation]()
        except Exception as error:  # noqa: BLE001
            tally.refused(error, ("key",))
            return
        tally.violation(f"{operation} accepted an unhashable {type(key).__name__} key")

    _explore(profile, construct, 2.0)
    _explore(profile, unhashable, 0.5)
    if (cache.usage_bytes, len(cache)) != (0, 0):
        tally.violation("unhashable keys changed the cache's figures")


def client_pools(profile: Profile, tally: Tally) -> None:
    """DatabaseConnectionPool, HttpClientPool and LlmClientPool: sizes, DSNs, URLs, keys, timeouts."""
    from otel_memory.integration import DatabaseConnectionPool, HttpClientPool, LlmClientPool

    dsn_parts = st.sampled_from(["host=127.0.0.1", f"password={SECRET}", "port=5432", "dbname=app",
                                 "user=app", "=", "'", "\\", "host", "port=", "sslmode='", " ", "\x00",
                                 "postgresql://", f"app:{SECRET}@", "127.0.0.1:5432", "/app", "?", "%"])
    dsns = st.lists(dsn_parts, min_size=1, max_size=6).map(" ".join)
    numbers = itertools.count()

    @given(dsn=dsns)
    def database(dsn: str) -> None:
        try:
            pool = DatabaseConnectionPool(2, dsn, name=f"reliability.db.{next(numbers)}",
                                          meter_provider=PROVIDER)
        except Exception as error:  # noqa: BLE001
            tally.refused(error, ("dsn",), SECRET)
            return
        text = repr(pool)
        pool.close()
        if SECRET in text:
            tally.violation("an accepted DSN's password is in the pool's repr")
        else:
            tally.accepted()

    @given(client=st.sampled_from(["database", "http", "llm"]),
           option=st.sampled_from(["size", "base_url", "request_timeout", "api_key", "model"]),
           value=st.one_of(_NUMBERS, st.sampled_from(["", " ", "ftp://x", "http://", "http://host:99999",
                                                      "not a url", "https://api.example.com/v1",
                                                      f"https://user:{SECRET}@h/", f"{SECRET} \n"])))
    def construct(client: str, option: str, value: Any) -> None:
        if (client, option) in (("database", "base_url"), ("database", "request_timeout"),
                                ("database", "api_key"), ("database", "model"), ("http", "api_key"),
                                ("http", "model")):
            return
        arguments: dict[str, Any] = {"size": 2}
        arguments["name"] = f"reliability.{client}.{next(numbers)}"
        if client == "llm":
            arguments.update(api_key="sk-reliability", model="m", base_url="http://127.0.0.1:9/v1")
        arguments[option] = value
        size = arguments.pop("size")
        try:
            if client == "database":
                pool: Any = DatabaseConnectionPool(size, "host=127.0.0.1 port=9", meter_provider=PROVIDER,
                                                   **arguments)
            elif client == "http":
                pool = HttpClientPool(size, meter_provider=PROVIDER, **arguments)
            else:
                pool = LlmClientPool(size, meter_provider=PROVIDER, **arguments)
        except Exception as error:  # noqa: BLE001
            tally.refused(error, (option,), SECRET if option != "model" else None)
            return
        text = repr(pool)
        pool.close()
        if SECRET in text and option != "model":   # a model name is public (a span attribute)
            tally.violation(f"an accepted {client} {option}'s secret is in the repr")
        else:
            tally.accepted()

    _explore(profile, database, 0.5)
    _explore(profile, construct, 1.5)


def leak_detector(profile: Profile, tally: Tally) -> None:
    """LeakDetector with any interval, threshold, chunk size and policy: an accepted interval must
    be one its thread can wait (NaN makes it spin, math.inf or 1e10 s kill it with OverflowError)."""
    from otel_memory.leak import LeakDetector

    @given(option=st.sampled_from(["interval_s", "threshold_bytes", "chunk_size", "policy"]), value=_NUMBERS)
    def construct(option: str, value: Any) -> None:
        try:
            detector = LeakDetector(meter_provider=PROVIDER, **{option: value})
        except Exception as error:  # noqa: BLE001
            tally.refused(error, (option,))
            return
        if not 0 < detector.interval_s <= threading.TIMEOUT_MAX:
            tally.violation(f"accepted interval_s={value!r}: no thread can wait that")
        else:
            tally.accepted()

    _explore(profile, construct, 0.5)


def bad_input(profile: Profile) -> Row:
    """Every property above; the row counts examples, refusals and violations."""
    row = Row("Bad input (hypothesis)", "")
    tallies = {name: Tally() for name in ("MEMORY_* variables", "misspelt variables", "pools", "caches",
                                          "client pools", "leak detector")}
    library_log = logging.getLogger("otel_memory")
    level = library_log.level
    library_log.setLevel(logging.ERROR)   # the warnings of accepted odd values (a 0.001 s leak
    try:                                  # threshold) are right, and thousands of them
        with row.timed(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            environment(profile, tallies["MEMORY_* variables"])
            misspelt(profile, tallies["misspelt variables"])
            pools(profile, tallies["pools"])
            caches(profile, tallies["caches"])
            client_pools(profile, tallies["client pools"])
            leak_detector(profile, tallies["leak detector"])
    finally:
        library_log.setLevel(level)
    for name, tally in tallies.items():
        row.check(f"{name}: every refusal a ConfigError/ValueError naming it and what is expected; "
                  "everything accepted works", tally.counts["violations"] == 0)
        row.figures[name] = {"counts": dict(tally.counts), "violations": tally.violations}
    examples = sum(sum(t.counts.values()) for t in tallies.values())
    refusals = sum(t.counts["refused"] for t in tallies.values())
    violations = sum(t.counts["violations"] for t in tallies.values())
    row.figures.update(examples=examples, refusals=refusals, violations=violations)
    row.count = f"{examples:,} examples"
    misspelt_counts = tallies["misspelt variables"].counts
    broken = {name: t.counts["violations"] for name, t in tallies.items() if t.counts["violations"]}
    row.result = (f"{refusals:,} refusals, each a ConfigError/ValueError naming the variable or argument "
                  f"and what is expected, in {len(tallies) - len(broken)} of {len(tallies)} groups "
                  f"({', '.join(name for name in tallies if name not in broken)}); "
                  f"{misspelt_counts['warned']:,} misspellings, each warned once, "
                  f"{misspelt_counts['warned_right_name']:,} suggesting the intended name"
                  + "".join(f"; {name}: {count:,} violations" for name, count in broken.items()))
    return row
