"""The grammar of forklab's ``sh``: POSIX simple commands, pipelines, and-or lists, ``;``, ``&`` and redirections.

``parse(source)`` turns a script into ``Item``s; it is pure (no calls), so a fork child that
re-runs the shell parses the same script to the same tree. What it takes:

* words with ``'...'``, ``"..."`` and backslash quoting; ``$?``, ``$$``, ``$!``, ``$#``, ``$0``-``$9``,
  ``$@``, ``$*``, ``$NAME`` and ``${NAME}`` (expanded later, by ``sh.Shell``);
* ``NAME=value`` assignments before a command;
* redirections ``<``, ``>``, ``>|``, ``>>``, ``<>``, ``N>&M``, ``N<&M``, ``N>&-`` with an optional fd number;
* pipelines ``a | b | c``, negation ``! a``, and-or lists ``&&``/``||``, ``;``, ``&``, newlines, ``#`` comments.

What it refuses, with a syntax error naming it (status 2, as dash's syntax errors): compound
commands (``if``, ``while``, ``for``, ``case``, ``( )``, ``{ }``), functions, here-documents,
command substitution (``$(...)``, backquotes) and the ``${NAME...}`` operators. Globbing and
tilde expansion are not done: ``*`` and ``~`` stay as they are (the model has no readdir).
"""

from __future__ import annotations

from dataclasses import dataclass

SPECIAL_PARAMS = frozenset("?$!#@*-0123456789")
RESERVED = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "case", "esac", "while", "until", "for",
                      "in", "{", "}", "function", "select"})
OPERATORS = ("&&", "||", ";;", ">>", ">|", ">&", "<&", "<>", "<<", "|", "&", ";", "<", ">", "(", ")")
REDIRECTIONS = frozenset({"<", ">", ">>", ">|", ">&", "<&", "<>"})
UNSUPPORTED_OPS = {"(": "subshells '( ... )'", "<<": "here-documents '<<'"}  # ")" and ";;" are just unexpected
_META = frozenset(" \t\n|&;<>()")


class ShellSyntaxError(Exception):
    """The script does not parse; the message is what follows ``Syntax error:`` in dash's report."""


@dataclass(slots=True, frozen=True)
class Part:
    """A piece of a word: literal text, or (``param``) the name of a parameter; ``quoted`` if inside quotes."""

    text: str
    quoted: bool = False
    param: bool = False


Word = tuple[Part, ...]


@dataclass(slots=True, frozen=True)
class Redirect:
    """``fd op target``: ``op`` is one of REDIRECTIONS."""

    fd: int
    op: str
    target: Word


@dataclass(slots=True, frozen=True)
class Simple:
    """A simple command: assignments, words (the command and its arguments) and redirections in order."""

    assigns: tuple[tuple[str, Word], ...]
    words: tuple[Word, ...]
    redirects: tuple[Redirect, ...]


@dataclass(slots=True, frozen=True)
class Pipeline:
    """``[!] cmd | cmd | ...``."""

    commands: tuple[Simple, ...]
    negate: bool


@dataclass(slots=True, frozen=True)
class AndOr:
    """``pipeline (&& | ||) pipeline ...``: the first pipeline and each (operator, pipeline) after it."""

    first: Pipeline
    rest: tuple[tuple[str, Pipeline], ...]


@dataclass(slots=True, frozen=True)
class Item:
    """One and-or list of the script, run in the background when it ended with ``&``."""

    body: AndOr
    background: bool


@dataclass(slots=True, frozen=True)
class Token:
    """A lexical token: ``word`` (with ``parts``), ``op`` (``text``, and ``fd`` for a redirection's number),
    ``newline`` or ``eof``."""

    kind: str
    text: str = ""
    parts: Word = ()
    fd: int | None = None

    def describe(self) -> str:
        """How dash names the token in ``X unexpected``."""
        if self.kind == "eof":
            return "end of file"
        if self.kind == "newline":
            return "newline"
        return f'"{self.text}"'

    def literal(self) -> str | None:
        """The word's text if it is one unquoted literal (a reserved word, ``!``, a name), else None."""
        if self.kind == "word" and len(self.parts) == 1 and not self.parts[0].quoted and not self.parts[0].param:
            return self.parts[0].text
        return None


# --- the lexer ----------------------------------------------------------------------------------


def tokenize(src: str) -> list[Token]:
    """The tokens of ``src``, ending with an ``eof`` token."""
    lexer = _Lexer(src)
    return lexer.run()


class _Lexer:
    """A cursor over the source that reads operators and words."""

    __slots__ = ("i", "src", "tokens")

    def __init__(self, src: str) -> None:
        self.src = src
        self.i = 0
        self.tokens: list[Token] = []

    def peek(self, k: int = 0) -> str:
        """The character ``k`` after the cursor, or "" past the end."""
        j = self.i + k
        return self.src[j] if j < len(self.src) else ""

    def run(self) -> list[Token]:
        """Tokenize the whole source."""
        while self.i < len(self.src):
            c = self.peek()
            if c in " \t":
                self.i += 1
            elif c == "\\" and self.peek(1) == "\n":
                self.i += 2
            elif c == "\n":
                self.tokens.append(Token("newline"))
                self.i += 1
            elif c == "#":
                while self.i < len(self.src) and self.peek() != "\n":
                    self.i += 1
            elif c in "|&;<>()":
                self.tokens.append(self.operator(None))
            else:
                self.word()
        self.tokens.append(Token("eof"))
        return self.tokens

    def operator(self, fd: int | None) -> Token:
        """The longest operator at the cursor (with the fd number before a redirection)."""
        for op in OPERATORS:
            if self.src.startswith(op, self.i):
                self.i += len(op)
                if op in UNSUPPORTED_OPS:
                    raise ShellSyntaxError(f"{UNSUPPORTED_OPS[op]} are not supported by forklab's sh")
                return Token("op", op, fd=fd if op in REDIRECTIONS else None)
        raise AssertionError(f"no operator at {self.i}")

    def word(self) -> None:
        """One word; a word of digits right before ``<`` or ``>`` is a redirection's fd number instead."""
        parts: list[Part] = []
        start = self.i
        while self.i < len(self.src) and self.peek() not in _META:
            c = self.peek()
            if c == "'":
                parts.append(Part(self.single_quoted(), quoted=True))
            elif c == '"':
                parts.extend(self.double_quoted())
            elif c == "\\":
                parts.append(Part(self.peek(1), quoted=True))
                self.i += 2
            elif c == "$":
                parts.append(self.dollar(quoted=False))
            elif c == "`":
                raise ShellSyntaxError("command substitution '`...`' is not supported by forklab's sh")
            else:
                parts.append(Part(c))
                self.i += 1
        raw = self.src[start:self.i]
        if raw.isascii() and raw.isdigit() and self.peek() in ("<", ">"):
            self.tokens.append(self.operator(int(raw)))
            return
        self.tokens.append(Token("word", raw, _merge(parts)))

    def single_quoted(self) -> str:
        """The text of ``'...'`` (no escapes inside)."""
        end = self.src.find("'", self.i + 1)
        if end < 0:
            raise ShellSyntaxError("Unterminated quoted string")
        text = self.src[self.i + 1:end]
        self.i = end + 1
        return text

    def double_quoted(self) -> list[Part]:
        """The parts of ``"..."``: backslash escapes only $ ` " \\ and newline; ``$`` expands."""
        self.i += 1
        parts = [Part("", quoted=True)]  # "" is an empty field, not nothing
        while True:
            c = self.peek()
            if c == "":
                raise ShellSyntaxError("Unterminated quoted string")
            if c == '"':
                self.i += 1
                return parts
            if c == "\\" and self.peek(1) in ("$", "`", '"', "\\", "\n"):
                if self.peek(1) != "\n":
                    parts.append(Part(self.peek(1), quoted=True))
                self.i += 2
            elif c == "$":
                parts.append(self.dollar(quoted=True))
            elif c == "`":
                raise ShellSyntaxError("command substitution '`...`' is not supported by forklab's sh")
            else:
                parts.append(Part(c, quoted=True))
                self.i += 1

    def dollar(self, quoted: bool) -> Part:
        """A parameter after ``$`` (``$?``, ``$NAME``, ``${NAME}``), or a literal ``$``."""
        nxt = self.peek(1)
        if nxt == "(":
            raise ShellSyntaxError("command substitution '$(...)' is not supported by forklab's sh")
        if nxt == "{":
            end = self.src.find("}", self.i + 2)
            if end < 0:
                raise ShellSyntaxError("Missing '}'")
            name = self.src[self.i + 2:end]
            if not (_is_name(name) or name in SPECIAL_PARAMS or (name.isascii() and name.isdigit())):
                raise ShellSyntaxError(f"${{{name}}}: only ${{NAME}} is supported by forklab's sh")
            self.i = end + 1
            return Part(name, quoted, param=True)
        if nxt and nxt in SPECIAL_PARAMS:
            self.i += 2
            return Part(nxt, quoted, param=True)
        if nxt and (nxt.isalpha() or nxt == "_") and nxt.isascii():
            end = self.i + 1
            while end < len(self.src) and (self.src[end].isalnum() or self.src[end] == "_") and self.src[end].isascii():
                end += 1
            name = self.src[self.i + 1:end]
            self.i = end
            return Part(name, quoted, param=True)
        self.i += 1
        return Part("$", quoted)


def _is_name(text: str) -> bool:
    """A shell variable name: a letter or underscore, then letters, digits, underscores (ASCII)."""
    return bool(text) and text.isascii() and (text[0].isalpha() or text[0] == "_") and text.replace("_", "a").isalnum()


def _merge(parts: list[Part]) -> Word:
    """Join neighbouring literal parts of the same quoting into one."""
    out: list[Part] = []
    for part in parts:
        prev = out[-1] if out else None
        if prev is not None and not prev.param and not part.param and prev.quoted == part.quoted:
            out[-1] = Part(prev.text + part.text, part.quoted)
        else:
            out.append(part)
    return tuple(out)


# --- the parser ---------------------------------------------------------------------------------


def parse(src: str) -> tuple[Item, ...]:
    """The items of a script; ShellSyntaxError if it does not parse or uses what forklab's sh lacks."""
    return _Parser(tokenize(src)).program()


class _Parser:
    """Recursive descent over the tokens."""

    __slots__ = ("pos", "tokens")

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> Token:
        """The next token."""
        return self.tokens[self.pos]

    def take(self) -> Token:
        """Consume and return the next token."""
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def is_op(self, *ops: str) -> bool:
        """Whether the next token is one of ``ops``."""
        tok = self.peek()
        return tok.kind == "op" and tok.text in ops

    def newlines(self) -> None:
        """Skip newline tokens (a linebreak)."""
        while self.peek().kind == "newline":
            self.pos += 1

    def unexpected(self) -> ShellSyntaxError:
        """dash's ``X unexpected`` for the next token."""
        return ShellSyntaxError(f"{self.peek().describe()} unexpected")

    def program(self) -> tuple[Item, ...]:
        """items separated by ``;``, ``&`` or newlines, to the end of the source."""
        items: list[Item] = []
        while True:
            self.newlines()
            if self.peek().kind == "eof":
                return tuple(items)
            body = self.and_or()
            background = self.is_op("&")
            if self.is_op("&", ";"):
                self.pos += 1
            elif self.peek().kind not in ("newline", "eof"):
                raise self.unexpected()
            items.append(Item(body, background))

    def and_or(self) -> AndOr:
        """``pipeline ((&& | ||) linebreak pipeline)*``."""
        first = self.pipeline()
        rest: list[tuple[str, Pipeline]] = []
        while self.is_op("&&", "||"):
            op = self.take().text
            self.newlines()
            rest.append((op, self.pipeline()))
        return AndOr(first, tuple(rest))

    def pipeline(self) -> Pipeline:
        """``[!] command (| linebreak command)*``."""
        negate = self.peek().literal() == "!"
        if negate:
            self.pos += 1
        commands = [self.command()]
        while self.is_op("|"):
            self.pos += 1
            self.newlines()
            commands.append(self.command())
        return Pipeline(tuple(commands), negate)

    def command(self) -> Simple:
        """A simple command: assignments, then words and redirections in any order."""
        first = self.peek().literal()
        if first in RESERVED:
            raise ShellSyntaxError(f"'{first}' (compound commands) is not supported by forklab's sh")
        assigns: list[tuple[str, Word]] = []
        words: list[Word] = []
        redirects: list[Redirect] = []
        while True:
            tok = self.peek()
            if tok.kind == "word":
                self.pos += 1
                assignment = _assignment(tok) if not words else None
                if assignment is not None:
                    assigns.append(assignment)
                else:
                    words.append(tok.parts)
            elif tok.kind == "op" and tok.text in REDIRECTIONS:
                redirects.append(self.redirect())
            else:
                break
        if not (assigns or words or redirects):
            raise self.unexpected()
        return Simple(tuple(assigns), tuple(words), tuple(redirects))

    def redirect(self) -> Redirect:
        """``[n]op word``; the default fd is 0 for ``<``, ``<&`` and ``<>``, 1 otherwise."""
        op_tok = self.take()
        target = self.peek()
        if target.kind != "word":
            raise self.unexpected()
        self.pos += 1
        fd = op_tok.fd if op_tok.fd is not None else (0 if op_tok.text.startswith("<") else 1)
        return Redirect(fd, op_tok.text, target.parts)


def _assignment(tok: Token) -> tuple[str, Word] | None:
    """(NAME, value) if the word is ``NAME=value`` with NAME unquoted, else None."""
    if not tok.parts or tok.parts[0].quoted or tok.parts[0].param:
        return None
    head = tok.parts[0].text
    name, eq, rest = head.partition("=")
    if not eq or not _is_name(name):
        return None
    value = ((Part(rest),) if rest else ()) + tok.parts[1:]
    return name, value


__all__ = ["AndOr", "Item", "Part", "Pipeline", "Redirect", "ShellSyntaxError", "Simple", "Word", "parse",
           "tokenize"]
