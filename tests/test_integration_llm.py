"""LlmClientPool without a server: validation, configuration and reprs that hide the key.

Requests against a real chat completions server are in tests/e2e/test_http_pools.py."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics import MeterProvider

from otel_memory.config import MemoryManagementConfig
from otel_memory.errors import ConfigError
from otel_memory.integration import LlmClientPool
from otel_memory.integration.llm import _Secret

KEY = "sk-unit-0123456789abcdef"


def test_key_is_hidden_everywhere_it_could_print(meter_provider: MeterProvider) -> None:
    llm = LlmClientPool(1, KEY, "m", base_url="https://user:pw@llm.example:8443/v1",
                        meter_provider=meter_provider)
    with llm.get_client() as client:
        texts = [repr(llm), str(llm), repr(client), repr(client.http.headers), repr(llm._key),
                 str(llm._key)]
    for text in texts:
        assert KEY not in text
    assert "pw" not in repr(llm) and "llm.example:8443/v1" in repr(llm)
    assert _Secret(KEY).scrub(f"echo {KEY}!") == "echo ***!"
    llm.close()


def test_validation_and_size_from_memory_llm_pool_size(meter_provider: MeterProvider) -> None:
    with pytest.raises(TypeError, match="api_key"):
        LlmClientPool(1, "", "m")
    with pytest.raises(TypeError, match="model"):
        LlmClientPool(1, KEY, "")
    config = MemoryManagementConfig.from_env({"MEMORY_LLM_POOL_SIZE": "3"})
    llm = LlmClientPool.from_config(config, KEY, "m", meter_provider=meter_provider)
    assert llm.size == 3
    with llm.get_client() as client, pytest.raises(TypeError, match="prompt must be a str"):
        client.generate(b"bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize(("key", "kind"), [(KEY + "\n", "whitespace"), ("sk-secr\u00e9t-42", "non-ASCII"),
                                           ("sk-a\x01b", "control")])
def test_key_that_would_be_quoted_by_a_header_error_is_refused_without_quoting_it(
        key: str, kind: str) -> None:
    with pytest.raises(ConfigError, match=f"found {kind} characters") as refused:
        LlmClientPool(1, key, "m", base_url="http://127.0.0.1:1/v1")
    assert key.strip() not in str(refused.value) and key.strip() not in repr(refused.value)
