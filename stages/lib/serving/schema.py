"""What the server accepts: OpenAI-style request bodies, checked, and the errors it answers with.

Fields follow OpenAI's chat-completions and completions APIs; fields this server does not act on (user,
frequency_penalty at 0, ...) are ignored, and the few whose request cannot be honoured (logprobs, tools) are
refused, so a client never gets an answer that silently ignored what it asked for. top_k and
repetition_penalty are extensions (the openai client sends them with extra_body), as in vLLM.

Every error is an ApiError: an HTTP status and OpenAI's body,
{"error": {"message": ..., "type": ..., "param": ..., "code": ...}}.
"""
from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stages.lib.errors import UserError
from stages.lib.model.decoding import Sampling

MAX_STOP_STRINGS = 4  # as OpenAI


class ApiError(Exception):
    """An error answered to the client: the status and OpenAI's error body."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class Body(BaseModel):
    """Unknown fields are ignored, as OpenAI-compatible servers do (clients send fields of newer APIs)."""
    model_config = ConfigDict(extra="ignore")


class ContentPart(Body):
    type: str
    text: str | None = None


class Message(Body):
    role: str
    content: str | list[ContentPart] | None = None


class StreamOptions(Body):
    include_usage: bool = False


class SamplingRequest(Body):
    """The fields both endpoints share."""
    model: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repetition_penalty: float | None = None
    n: int = 1
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    logprobs: Any = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None

    def sampling(self) -> Sampling:
        """The sampling options (OpenAI's defaults: temperature 1, top_p 1), or a 400 naming the field."""
        sampling = Sampling(temperature=1.0 if self.temperature is None else self.temperature,
                            top_k=self.top_k or 0, top_p=1.0 if self.top_p is None else self.top_p,
                            repetition_penalty=self.repetition_penalty or 1.0)
        try:
            sampling.validate()
        except UserError as err:
            raise ApiError(400, str(err), param=str(err).split("=")[0]) from None
        return sampling

    def stop_strings(self) -> list[str]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stops) > MAX_STOP_STRINGS or "" in stops:
            raise ApiError(400, f"stop takes at most {MAX_STOP_STRINGS} non-empty strings", param="stop")
        return stops

    def check_supported(self) -> None:
        """400 for what this server cannot do rather than an answer that ignores it."""
        if self.logprobs not in (None, False, 0):
            raise ApiError(400, "logprobs are not supported by this server", param="logprobs")
        for name in ("frequency_penalty", "presence_penalty"):
            if getattr(self, name):
                raise ApiError(400, f"{name} is not supported by this server: use repetition_penalty (> 1 makes "
                                    f"tokens already in the text less likely)", param=name)


class ChatRequest(SamplingRequest):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = None
    tools: list[Any] | None = None

    def check_supported(self) -> None:
        super().check_supported()
        if self.tools:
            raise ApiError(400, "tools are not supported by this server", param="tools")

    def conversation(self) -> list[dict]:
        """The messages as the chat format takes them: {"role", "content"} with text content; "developer"
        (OpenAI's newer name for system) is system."""
        out = []
        for i, message in enumerate(self.messages):
            role = "system" if message.role == "developer" else message.role
            if role not in ("system", "user", "assistant"):
                raise ApiError(400, f"messages[{i}].role {message.role!r} is not supported: use system, user or "
                                    f"assistant", param=f"messages.{i}.role")
            content = message.content
            if isinstance(content, list):
                if any(part.type != "text" for part in content):
                    raise ApiError(400, f"messages[{i}].content: only text parts are supported",
                                   param=f"messages.{i}.content")
                content = "".join(part.text or "" for part in content)
            out.append({"role": role, "content": content or ""})
        return out


class CompletionRequest(SamplingRequest):
    prompt: str | list[str] = ""
    echo: bool = False
    suffix: str | None = None

    def prompts(self) -> list[str]:
        prompts = [self.prompt] if isinstance(self.prompt, str) else self.prompt
        if not prompts:
            raise ApiError(400, "prompt is an empty list", param="prompt")
        if self.suffix:
            raise ApiError(400, "suffix is not supported by this server", param="suffix")
        return prompts


def parse(kind: type[SamplingRequest], body: bytes) -> Any:
    """The request of `kind` in `body`, or a 400 saying what is wrong and where."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ApiError(400, f"the body is not valid JSON ({err})") from None
    except RecursionError:
        raise ApiError(400, "the body is nested too deeply") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    try:
        request = kind.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ApiError(400, f"{where}: {first['msg']}", param=where or None) from None
    request.check_supported()
    return request

