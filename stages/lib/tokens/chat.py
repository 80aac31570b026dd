"""The chat format, the one definition: how a conversation becomes token ids, and which of them are learned.

    [eot] <|system|> content <|end|> <|user|> content <|end|> <|assistant|> content <|end|> ...

A conversation starts with the end-of-text token (so it begins the way every pretraining document does,
right after an end-of-text), then each message is its role token, its content encoded as ordinary text,
and <|end|>. A generation prompt is the conversation so far followed by <|assistant|>; the model's turn
ends when it produces <|end|>.

Role tokens are special tokens reserved in the tokenizer (params.yaml tokenizer.special_tokens). Contents
are encoded with the tokenizer's `encode`, which never produces a special token from text, so a content
that spells "<|user|>" cannot open a role: it is encoded as the characters it is.

JINJA_TEMPLATE renders the same format for Hugging Face transformers; the exported tokenizer carries it as
`chat_template` (stages/lib/tokens/hf_tokenizer.py), and `apply_chat_template` gives the same ids
(tests/test_chat.py), except that transformers does match a literal "<|user|>" inside a content as the
special token: its templates render text first and tokenize after.
"""
from __future__ import annotations

from stages.lib.errors import UserError
from stages.lib.tokens.tokenizer_adapter import Tokenizer

CHAT_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>")
ROLES = ("system", "user", "assistant")
END = "<|end|>"

# The same format for transformers. Whitespace matters: the string has no newline, so nothing leaks between
# tokens. The {% generation %} block marks what we learn, so return_assistant_tokens_mask=True gives our mask.
JINJA_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('unknown role: ' + message['role']) }}"
    "{% endif %}"
    "{{ '<|' + message['role'] + '|>' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|end|>' }}{% endgeneration %}"
    "{% else %}"
    "{{ message['content'] + '<|end|>' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def role_token(role: str) -> str:
    return f"<|{role}|>"


def has_chat_tokens(tok: Tokenizer) -> bool:
    return all(tok.special_id(t) is not None for t in CHAT_TOKENS)


class ChatFormat:
    """Encodes conversations (lists of {"role", "content"} dicts) for one tokenizer."""

    def __init__(self, tok: Tokenizer):
        missing = [t for t in CHAT_TOKENS if tok.special_id(t) is None]
        if missing:
            raise UserError(f"the tokenizer lacks the chat tokens {', '.join(missing)}: add them to params.yaml "
                            f"tokenizer.special_tokens (after the end-of-text token) and rerun the tokenizer stage "
                            f"(and the stages after it)")
        self.tok = tok
        self.eot_id = tok.eot_id
        self.role_ids = {role: tok.special_id(role_token(role)) for role in ROLES}
        self.assistant_id = self.role_ids["assistant"]
        self.end_id = tok.special_id(END)

    def encode_conversation(self, messages: list[dict]) -> tuple[list[int], list[bool]]:
        """Token ids of the conversation, and mask[i]: whether ids[i] is a target to learn.

        mask[i] is about the token ids[i] itself, not about position i's prediction: a trainer that
        predicts ids[t + 1] at position t takes its loss weights from mask[1:]. The learned tokens are the
        contents of assistant messages and the <|end|> closing each of them (so the model learns to stop);
        eot, role tokens, system and user contents are context only.
        """
        contents = self.tok.encode_batch([self._content(m) for m in messages]) if messages else []
        ids, mask = [self.eot_id], [False]
        for message, content in zip(messages, contents):
            learned = message["role"] == "assistant"
            ids += [self.role_ids[message["role"]], *content, self.end_id]
            mask += [False] + [learned] * (len(content) + 1)
        return ids, mask

    def encode_prompt(self, messages: list[dict]) -> list[int]:
        """The conversation so far and <|assistant|>: what the model continues to answer."""
        return self.encode_conversation(messages)[0] + [self.assistant_id]

    @staticmethod
    def _content(message: dict) -> str:
        if message.get("role") not in ROLES:
            raise ValueError(f"unknown role {message.get('role')!r}: expected one of {', '.join(ROLES)}")
        if not isinstance(message.get("content"), str):
            raise ValueError(f"message content must be a string, got {message.get('content')!r}")
        return message["content"]
