"""Request and response models of the OpenAI-compatible endpoint (``/v1``), as OpenAI's chat API shapes them.

Requests ignore the fields this product has no use for (``temperature``, ``max_tokens``, ``tools`` …), so
that any OpenAI client can send what it always sends; what is read is checked strictly. Responses add one
top-level field, ``citations``, with the same objects as ``POST /ask``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.http.schemas import CitationOut

# A chat client sends the whole conversation every turn; the last 50 messages are read (the API's history
# limit), so a long chat is not refused. 1,000 messages of a few hundred characters stay under the 1 MiB
# body limit that refuses anything larger first.
MAX_MESSAGES = 1000
MAX_CONTENT_CHARS = 100_000  # a message's text; what is read of it is cut to the API's turn limit


class _Lenient(BaseModel):
    # Unknown fields are ignored (OpenAI's clients send many); known ones are not coerced.
    model_config = ConfigDict(extra="ignore", strict=True)


class ContentPart(_Lenient):
    type: str = Field(max_length=50, description='"text" parts are read; others (images …) are skipped.')
    text: str | None = Field(None, max_length=MAX_CONTENT_CHARS)


class ChatMessage(_Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = Field(None, max_length=MAX_CONTENT_CHARS)

    def text(self) -> str:
        """The message's text: the string, or its text parts joined."""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text for p in self.content or [] if p.type == "text" and p.text)


class StreamOptions(_Lenient):
    include_usage: bool = False


class ChatRequest(_Lenient):
    model: str = Field(min_length=1, max_length=200, examples=["evidence-rag"])
    messages: list[ChatMessage] = Field(
        min_length=1,
        max_length=MAX_MESSAGES,
        description="The conversation, oldest first: the last message is the user's question, the earlier "
        "user and assistant messages are the history (system messages are ignored).",
    )
    stream: bool = Field(False, description="Send the answer as server-sent events (OpenAI's chunks).")
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=1, description="Only one answer is ever composed.")


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str = Field(
        description="The answer with its [n] markers, then a Sources block (title, date, quoted sentence)."
    )


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    citations: list[CitationOut] = Field(description="The same objects as POST /ask returns.")


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed answer; the last one carries ``citations``."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    citations: list[CitationOut] | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    error: ErrorBody
