"""Stream the elements of a top-level JSON array without loading the whole file.

Instruction sets such as BioMed-VITAL ship as one JSON array of hundreds of MB
(`[{...}, {...}, ...]`). `iter_json_array` reads it in chunks and yields each
element with its byte span, so a source can list 210K entries with bounded
memory.

A syntax error cannot be resynchronised (JSON has no line structure): the
element where it occurs is reported once as an `ArrayError` and iteration stops;
everything before it has been yielded.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

CHUNK = 1 << 20
_WS = " \t\r\n"


@dataclass(frozen=True)
class ArrayElement:
    """Element `number` (1-based) of the array, its value, its byte span in the file and
    its text as written there."""

    number: int
    value: Any
    offset: int
    length: int
    text: str


@dataclass(frozen=True)
class ArrayError:
    """Why reading stopped at element `number` (1-based); nothing after it is read."""

    number: int
    reason: str


def iter_json_array(fh: IO[bytes], chunk: int = CHUNK) -> Iterator[ArrayElement | ArrayError]:
    """The elements of the JSON array in binary file `fh`, in order, then at most one error."""
    reader = _Buffer(fh, chunk)
    number = 1
    try:
        pos = reader.skip_ws(0)
        if pos >= len(reader.buf) or reader.buf[pos] != "[":
            yield ArrayError(number, "the file is not a JSON array (it must start with '[')")
            return
        pos = reader.skip_ws(pos + 1)
        if pos < len(reader.buf) and reader.buf[pos] == "]":
            return
        while True:
            pos = reader.skip_ws(pos)
            try:
                value, pos_start, end = reader.decode(pos)
            except json.JSONDecodeError as exc:
                yield ArrayError(number, f"invalid JSON in element {number}: {exc.msg} "
                                 f"(byte {reader.byte_at(exc.pos)})")
                return
            start = reader.byte_at(pos_start)
            text = reader.buf[pos_start:end]
            yield ArrayElement(number, value, start, reader.byte_at(end) - start, text)
            number += 1
            pos = reader.skip_ws(end)
            if pos >= len(reader.buf):
                yield ArrayError(number, "the file ends inside the array (truncated download?)")
                return
            if reader.buf[pos] == "]":
                return
            if reader.buf[pos] != ",":
                yield ArrayError(number, f"expected ',' or ']' after element {number - 1}, "
                                 f"found {reader.buf[pos]!r}")
                return
            pos += 1
    except UnicodeDecodeError as exc:
        yield ArrayError(number, f"the file is not UTF-8: {exc.reason}")


class _Buffer:
    """Decoded text of a file read in chunks; text before the element being read is dropped
    when more is read, so memory holds about one chunk plus the largest element."""

    def __init__(self, fh: IO[bytes], chunk: int) -> None:
        self.fh, self.chunk = fh, chunk
        self.utf8 = codecs.getincrementaldecoder("utf-8")()
        self.decoder = json.JSONDecoder()
        self.buf = ""
        self.buf_byte = 0  # file byte offset of buf[0]
        self.mark = 0  # buf index of the last position measured in bytes
        self.mark_byte = 0
        self.eof = False

    def byte_at(self, pos: int) -> int:
        """The file byte offset of buf[pos] (pos at or after the last one asked for)."""
        self.mark_byte += len(self.buf[self.mark:pos].encode("utf-8"))
        self.mark = pos
        return self.mark_byte

    def more(self, keep: int) -> tuple[int, bool]:
        """Read a chunk, dropping text before buf[keep]: (the shift to subtract from
        positions, whether anything was read)."""
        if self.eof:
            return 0, False
        data = self.fh.read(self.chunk)
        self.byte_at(keep)
        self.buf = self.buf[keep:]
        self.mark = 0
        if not data:
            self.eof = True
            self.buf += self.utf8.decode(b"", final=True)
            return keep, False
        self.buf += self.utf8.decode(data)
        return keep, True

    def skip_ws(self, pos: int) -> int:
        while True:
            while pos < len(self.buf) and self.buf[pos] in _WS:
                pos += 1
            if pos < len(self.buf):
                return pos
            shift, read = self.more(pos)
            pos -= shift
            if not read:
                return len(self.buf)

    def decode(self, pos: int) -> tuple[object, int, int]:
        """(value, its start, its end) of the JSON value at buf[pos]; reads on as needed."""
        while True:
            complete = self.buf[pos:pos + 1] in ("{", "[", '"') or any(
                c in self.buf[pos:] for c in ",]" + _WS)  # a bare number/literal has ended
            if complete:
                try:
                    value, end = self.decoder.raw_decode(self.buf, pos)
                    return value, pos, end
                except json.JSONDecodeError:
                    if self.eof:
                        raise
            shift, read = self.more(pos)
            pos -= shift
            if not read:
                value, end = self.decoder.raw_decode(self.buf, pos)  # raises at the end
                return value, pos, end
