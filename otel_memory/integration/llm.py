"""LlmClientPool: pooled clients for an OpenAI-compatible chat completions endpoint.

``client.generate(prompt)`` posts to ``{base_url}/chat/completions`` and returns the first
choice's text, in a span named ``chat {model}`` with the GenAI semantic-convention attributes.
The API key lives only in the Authorization header of the pooled httpx clients: it never
appears in a repr, a log line, a metric, a span or an exception message (a server that echoes
it back in an error body has it replaced by ``***``).

Example::

    llm = LlmClientPool(4, api_key=os.environ["OPENAI_API_KEY"], model="gpt-4o-mini")
    with llm.get_client() as client:
        print(client.generate("Say hello"))
    async with llm.get_client() as aclient:
        print(await aclient.generate("Say hello"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from opentelemetry import metrics, trace
from opentelemetry.trace import Span, StatusCode

from ..config import MemoryManagementConfig
from ..errors import ArgumentTypeError, ConfigError, OtelMemoryError
from ..pool import AsyncObjectPool, ObjectPool
from ._scope import BorrowScope, PoolPair, check_base_url, check_seconds, check_size

if TYPE_CHECKING:
    from ..manager import MemoryManager

__all__ = ["AsyncLlmClient", "LlmClient", "LlmClientPool", "LlmError"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class LlmError(OtelMemoryError):
    """A chat completion failed: HTTP status and the server's message, never the API key.

    Example::

        try:
            client.generate("hi")
        except LlmError as error:
            log.warning("LLM unavailable: %s", error)
    """


class _Secret:
    """A string that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def scrub(self, text: str) -> str:
        return text.replace(self._value, "***") if self._value else text

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("an API key cannot be pickled")


class _Chat:
    """Request building, response parsing and tracing shared by the sync and async clients."""

    def __init__(self, key: _Secret, model: str, base_url: str, tracer: trace.Tracer) -> None:
        self._key = key
        self.model = model
        self._tracer = tracer
        self._server = urlsplit(base_url).hostname or ""

    def body(self, prompt: str, system: str | None, max_tokens: int | None,
             temperature: float | None) -> dict[str, Any]:
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if temperature is not None:
            body["temperature"] = temperature
        return body

    def span(self) -> Any:
        return self._tracer.start_as_current_span(
            f"chat {self.model}", kind=trace.SpanKind.CLIENT, record_exception=False,
            set_status_on_exception=False,
            attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": self.model,
                        "server.address": self._server})

    def parse(self, response: httpx.Response, span: Span) -> str:
        if response.status_code >= 400:
            raise LlmError(f"chat completion failed: HTTP {response.status_code}: "
                           f"{self._server_message(response)}")
        try:
            payload = response.json()
            text = payload["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise LlmError(f"chat completion returned an unexpected body ({type(error).__name__})") from None
        usage = payload.get("usage") or {}
        for attribute, key in (("gen_ai.usage.input_tokens", "prompt_tokens"),
                               ("gen_ai.usage.output_tokens", "completion_tokens")):
            if isinstance(usage.get(key), int):
                span.set_attribute(attribute, usage[key])
        if isinstance(payload.get("model"), str):
            span.set_attribute("gen_ai.response.model", payload["model"])
        return str(text)

    def _server_message(self, response: httpx.Response) -> str:
        try:
            message = str(response.json()["error"]["message"])
        except Exception:  # noqa: BLE001 - not the usual error shape
            message = response.reason_phrase
        return self._key.scrub(message)[:300]

    def failed(self, span: Span, error: BaseException) -> LlmError:
        """The exception to raise for ``error``, recorded on the span without secrets."""
        if isinstance(error, LlmError):
            result = error
        else:
            result = LlmError(f"chat completion failed: {type(error).__name__}: "
                              f"{self._key.scrub(str(error))[:300]}")
        span.set_status(StatusCode.ERROR, str(result))
        span.set_attribute("error.type", type(error).__name__)
        return result


class LlmClient:
    """A pooled sync chat completions client; ``generate(prompt)`` returns the reply text.

    Example::

        with llm.get_client() as client:
            client.generate("Summarise: ...", max_tokens=200)
    """

    def __init__(self, http: httpx.Client, chat: _Chat) -> None:
        self.http = http
        self._chat = chat

    @property
    def model(self) -> str:
        """The model requests name."""
        return self._chat.model

    def generate(self, prompt: str, *, system: str | None = None, max_tokens: int | None = None,
                 temperature: float | None = None) -> str:
        """One chat completion; raises LlmError on an HTTP error or an unexpected body."""
        body = self._chat.body(prompt, system, max_tokens, temperature)
        with self._chat.span() as span:
            try:
                return self._chat.parse(self.http.post("/chat/completions", json=body), span)
            except Exception as error:  # noqa: BLE001 - re-raised without secrets
                raise self._chat.failed(span, error) from None

    def __repr__(self) -> str:
        return f"<LlmClient model={self.model!r}>"


class AsyncLlmClient:
    """A pooled asyncio chat completions client; ``await generate(prompt)``.

    Example::

        async with llm.get_client() as client:
            await client.generate("Hello")
    """

    def __init__(self, http: httpx.AsyncClient, chat: _Chat) -> None:
        self.http = http
        self._chat = chat

    @property
    def model(self) -> str:
        """The model requests name."""
        return self._chat.model

    async def generate(self, prompt: str, *, system: str | None = None, max_tokens: int | None = None,
                       temperature: float | None = None) -> str:
        """One chat completion; raises LlmError on an HTTP error or an unexpected body."""
        body = self._chat.body(prompt, system, max_tokens, temperature)
        with self._chat.span() as span:
            try:
                response = await self.http.post("/chat/completions", json=body)
                return self._chat.parse(response, span)
            except Exception as error:  # noqa: BLE001 - re-raised without secrets
                raise self._chat.failed(span, error) from None

    def __repr__(self) -> str:
        return f"<AsyncLlmClient model={self.model!r}>"


class LlmClientPool(PoolPair[LlmClient, AsyncLlmClient]):
    """A pool of chat completions clients for one model and API key.

    Example::

        llm = LlmClientPool(4, api_key=key, model="llama3", base_url="http://127.0.0.1:11434/v1")
        with llm.get_client() as client:
            answer = client.generate("2+2?")
    """

    def __init__(self, size: int, api_key: str, model: str, base_url: str = DEFAULT_BASE_URL, *,
                 name: str = "llm", timeout: float | None = 30.0, request_timeout: float = 60.0,
                 max_lifetime: float | None = 600.0, idle_timeout: float | None = 300.0,
                 meter_provider: metrics.MeterProvider | None = None,
                 tracer_provider: trace.TracerProvider | None = None,
                 manager: MemoryManager | None = None) -> None:
        check_size("LlmClientPool", size)
        if not isinstance(api_key, str) or not api_key:
            raise ArgumentTypeError("api_key must be a non-empty string")
        if not all("!" <= char <= "~" for char in api_key):
            # httpx or h11 would reject it later with the header value, key included, in the
            # exception (UnicodeEncodeError's repr, h11's "Illegal header value b'Bearer ...'")
            raise ConfigError(f"api_key is not valid: expected printable ASCII without spaces, found "
                              f"{_unprintable(api_key)} characters in its {len(api_key)} "
                              "(a trailing newline read from a file?)")
        if not isinstance(model, str) or not model:
            raise ArgumentTypeError(f"model must be a non-empty string, got {type(model).__name__}")
        check_base_url("LlmClientPool", base_url, required=True)
        check_seconds("LlmClientPool", "request_timeout", request_timeout)
        self.model = model
        self.base_url = base_url.rstrip("/")
        self._key = _Secret(api_key)
        self._request_timeout = request_timeout
        if manager is not None:
            meter_provider = meter_provider or manager.meter_provider
            tracer_provider = tracer_provider or manager.tracer_provider
        tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer("otel_memory")
        self._chat = _Chat(self._key, model, self.base_url, tracer)
        self._options: dict[str, Any] = {"timeout": timeout, "max_lifetime": max_lifetime,
                                         "idle_timeout": idle_timeout, "meter_provider": meter_provider}
        super().__init__(name, size, manager, ObjectPool(
            name, self._make_client, size, health_check=lambda c: not c.http.is_closed,
            destroy=lambda c: c.http.close(), **self._options))

    @classmethod
    def from_config(cls, config: MemoryManagementConfig, api_key: str, model: str,
                    **options: Any) -> LlmClientPool:
        """A pool of ``config.llm_client_pool_size`` (MEMORY_LLM_POOL_SIZE) clients."""
        return cls(config.llm_client_pool_size, api_key, model, **options)

    @classmethod
    def for_manager(cls, manager: MemoryManager, api_key: str, model: str,
                    **options: Any) -> LlmClientPool:
        """A pool sized by the manager's config (MEMORY_LLM_POOL_SIZE), reporting through its
        providers and releasing idle clients under its HIGH/CRITICAL pressure."""
        return cls(manager.config.llm_client_pool_size, api_key, model, manager=manager, **options)

    def _http_options(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "timeout": self._request_timeout,
                "headers": {"Authorization": f"Bearer {self._key.reveal()}"}}

    def _make_client(self) -> LlmClient:
        return LlmClient(httpx.Client(**self._http_options()), self._chat)

    def _make_async_client(self) -> AsyncLlmClient:
        return AsyncLlmClient(httpx.AsyncClient(**self._http_options()), self._chat)

    def _make_async_pool(self) -> AsyncObjectPool[AsyncLlmClient]:
        return AsyncObjectPool(f"{self.name}.async", self._make_async_client, self.size,
                               health_check=lambda c: not c.http.is_closed, destroy=_aclose,
                               **self._options)

    def get_client(self, timeout: float | None = None) -> BorrowScope[LlmClient, AsyncLlmClient]:
        """``with`` lends an LlmClient, ``async with`` an AsyncLlmClient."""
        return self._scope(timeout)

    def __repr__(self) -> str:
        parts = urlsplit(self.base_url)
        where = f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"
        return f"<LlmClientPool {self.name!r} model={self.model!r} base_url={where!r} size={self.size}>"

    def __reduce__(self) -> Any:
        raise TypeError("an LlmClientPool holds an API key and cannot be pickled")


def _unprintable(key: str) -> str:
    """Which kinds of characters an API key must not have, named without quoting the key."""
    kinds = {"whitespace" if char.isspace() else "control" if ord(char) < 32 or ord(char) == 127
             else "non-ASCII" for char in key if not "!" <= char <= "~"}
    return " and ".join(sorted(kinds))


async def _aclose(client: AsyncLlmClient) -> None:
    await client.http.aclose()
