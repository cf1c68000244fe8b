"""Subscription filters: the attribute subset of Pub/Sub's filter language.

Supported, as documented for the real service: `attributes.k = "v"`, `attributes.k != "v"`, `attributes:k`,
`hasPrefix(attributes.k, "p")`, `NOT`/`-`, `AND`, `OR` and parentheses. Like the real service, mixing AND and
OR without parentheses is refused. Anything else raises INVALID_ARGUMENT rather than being silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from captionqc.pubsub_emulator.errors import invalid

MAX_FILTER_BYTES = 256

Predicate = Callable[[Mapping[str, str]], bool]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<op>!=|[=():,.\-])
      | (?P<word>[A-Za-z_][A-Za-z0-9_\-]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise invalid(f"Invalid filter: unexpected character at position {pos}: {text[pos : pos + 10]!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        tokens.append(_Token(kind, value))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str, text: str | None = None) -> _Token:
        token = self.peek()
        if token is None or token.kind != kind or (text is not None and token.text != text):
            found = "end of filter" if token is None else repr(token.text)
            raise invalid(f"Invalid filter: expected {text or kind}, found {found}")
        self.pos += 1
        return token

    def at_word(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "word" and token.text == word

    def expression(self) -> Predicate:
        first = self.unary()
        joiner: str | None = None
        terms = [first]
        while self.at_word("AND") or self.at_word("OR"):
            word = self.take("word").text
            if joiner is not None and word != joiner:
                raise invalid("Invalid filter: AND and OR must be separated by parentheses")
            joiner = word
            terms.append(self.unary())
        if joiner is None:
            return first
        if joiner == "AND":
            return lambda attrs: all(term(attrs) for term in terms)
        return lambda attrs: any(term(attrs) for term in terms)

    def unary(self) -> Predicate:
        token = self.peek()
        if self.at_word("NOT") or (token is not None and token.kind == "op" and token.text == "-"):
            self.pos += 1
            inner = self.unary()
            return lambda attrs: not inner(attrs)
        if token is not None and token.kind == "op" and token.text == "(":
            self.pos += 1
            inner = self.expression()
            self.take("op", ")")
            return inner
        if self.at_word("hasPrefix"):
            self.pos += 1
            self.take("op", "(")
            key = self.attribute_key()
            self.take("op", ",")
            prefix = self.take("string").text
            self.take("op", ")")
            return lambda attrs: key in attrs and attrs[key].startswith(prefix)
        return self.comparison()

    def attribute_key(self) -> str:
        self.take("word", "attributes")
        self.take("op", ".")
        return self.key()

    def key(self) -> str:
        token = self.peek()
        if token is not None and token.kind in ("word", "string"):
            self.pos += 1
            return token.text
        raise invalid("Invalid filter: expected an attribute key")

    def comparison(self) -> Predicate:
        self.take("word", "attributes")
        token = self.peek()
        if token is not None and token.kind == "op" and token.text == ":":
            self.pos += 1
            key = self.key()
            return lambda attrs: key in attrs
        self.take("op", ".")
        key = self.key()
        op = self.peek()
        if op is None or op.kind != "op" or op.text not in ("=", "!="):
            raise invalid("Invalid filter: expected = or != after an attribute")
        self.pos += 1
        value = self.take("string").text
        if op.text == "=":
            return lambda attrs: attrs.get(key) == value
        return lambda attrs: attrs.get(key) != value


def compile_filter(text: str) -> Predicate | None:
    """Compile a subscription filter, or return None for the empty filter (everything matches)."""
    if len(text.encode()) > MAX_FILTER_BYTES:
        raise invalid(f"Invalid filter: longer than {MAX_FILTER_BYTES} bytes")
    if not text.strip():
        return None
    parser = _Parser(text)
    predicate = parser.expression()
    if parser.peek() is not None:
        raise invalid(f"Invalid filter: unexpected {parser.peek().text!r}")  # type: ignore[union-attr]
    return predicate
