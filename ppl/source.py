"""Source text and spans: where a piece of a model came from, and how to show it.

A Span is 1-based (lines and columns, as lark reports them) with an exclusive end.
Rendering the caret excerpt lives here so every error looks the same.
"""
from __future__ import annotations

from dataclasses import dataclass

# characters of a source line an error shows (a longer line is cut around the error)
EXCERPT_WIDTH = 100


@dataclass(frozen=True)
class Source:
    """A model's text and the path it was read from (``<string>`` for text given directly)."""

    path: str
    text: str

    def line(self, number: int) -> str:
        """Return line ``number`` (1-based) without its newline, or '' past the end."""
        lines = self.lines()
        return lines[number - 1] if 1 <= number <= len(lines) else ""

    def lines(self) -> list[str]:
        """The text split at '\n' only (as lark counts lines), without trailing '\r'."""
        return [line.rstrip("\r") for line in self.text.split("\n")]

    def end_span(self) -> "Span":
        """A one-character span just past the last character (for errors at end of file)."""
        lines = self.lines()  # a trailing '\n' leaves an empty last line: point at its start
        return Span(self, len(lines), len(lines[-1]) + 1, len(lines), len(lines[-1]) + 2)


@dataclass(frozen=True)
class Span:
    """A region of a Source: 1-based line/column of its start, exclusive end."""

    source: Source
    line: int
    col: int
    end_line: int
    end_col: int

    def __repr__(self) -> str:  # keeps AST reprs readable
        return f"Span({self.line}:{self.col}-{self.end_line}:{self.end_col})"

    def to(self, other: "Span") -> "Span":
        """The span from the start of this one to the end of ``other``."""
        return Span(self.source, self.line, self.col, other.end_line, other.end_col)

    @property
    def text(self) -> str:
        """The source text the span covers (a span over several lines is joined by spaces)."""
        lines = self.source.lines()[self.line - 1:self.end_line]
        if not lines:
            return ""
        if len(lines) == 1:
            return lines[0][self.col - 1:self.end_col - 1]
        parts = [lines[0][self.col - 1:], *lines[1:-1], lines[-1][:self.end_col - 1]]
        return " ".join(part.strip() for part in parts)

    @property
    def location(self) -> str:
        """``path:line:col``, the prefix of every error message."""
        return f"{self.source.path}:{self.line}:{self.col}"

    def excerpt(self) -> str:
        """The source line with a caret under the span's first character and ``~`` to its end.

        A line longer than EXCERPT_WIDTH (a generated model's data written inline) is cut to
        that many characters around the span's start, '...' marking the cuts: the whole line
        was printed, 80 000 characters with the caret at the end of the last screen line.
        """
        text = self.source.line(self.line)
        gutter = f"{self.line:5d} | "
        end = self.end_col if self.end_line == self.line else len(text) + 1
        first = 0     # index in the line of the first character shown
        if len(text) > EXCERPT_WIDTH:
            first = max(0, min(self.col - 1 - EXCERPT_WIDTH // 3, len(text) - EXCERPT_WIDTH))
            end = min(end, first + EXCERPT_WIDTH + 1)
            cut = ("..." if first > 0 else "", "..." if first + EXCERPT_WIDTH < len(text) else "")
            text = cut[0] + text[first:first + EXCERPT_WIDTH] + cut[1]
            first -= len(cut[0])     # the marker's columns count the leading '...'
        width = max(1, end - self.col)
        # Copy tabs from the source line so the caret lines up under them.
        lead = "".join(c if c == "\t" else " " for c in text[: self.col - 1 - first])
        marker = lead + "^" + "~" * (width - 1)
        return f"{gutter}{text}\n{' ' * 6}| {marker}"
