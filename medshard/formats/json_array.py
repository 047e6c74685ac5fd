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
    """Element `number` (1-based) of the array, its value and its byte span in the file."""

    number: int
    value: Any
    offset: int
    length: int


@dataclass(frozen=True)
class ArrayError:
    """Why reading stopped at element `number` (1-based); nothing after it is read."""

    number: int
    reason: str


def iter_json_array(fh: IO[bytes], chunk: int = CHUNK) -> Iterator[ArrayElement | ArrayError]:
    """The elements of the JSON array in binary file `fh`, in order, then at most one error."""
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")()
    buf = ""  # decoded text not yet consumed
    buf_byte = 0  # byte offset in the file of buf[0]
    eof = False

    def more() -> bool:
        nonlocal buf, eof
        if eof:
            return False
        data = fh.read(chunk)
        if not data:
            eof = True
            buf += utf8.decode(b"", final=True)
            return False
        buf += utf8.decode(data)
        return True

    def skip_ws(pos: int) -> int:
        while True:
            while pos < len(buf) and buf[pos] in _WS:
                pos += 1
            if pos < len(buf) or not more():
                return pos

    def consume(pos: int) -> None:
        nonlocal buf, buf_byte
        buf_byte += len(buf[:pos].encode("utf-8"))
        buf = buf[pos:]

    number = 1
    try:
        pos = skip_ws(0)
        if pos >= len(buf) or buf[pos] != "[":
            yield ArrayError(number, "the file is not a JSON array (it must start with '[')")
            return
        consume(pos + 1)
        pos = skip_ws(0)
        if pos < len(buf) and buf[pos] == "]":
            return
        while True:
            pos = skip_ws(0)
            if pos < len(buf) and buf[pos] not in '{["':
                # a bare number or literal: read until its end is in the buffer
                while not any(c in buf[pos:] for c in ",]" + _WS) and more():
                    pass
            while True:
                try:
                    value, end = decoder.raw_decode(buf, pos)
                    break
                except json.JSONDecodeError as exc:
                    if more():
                        continue
                    yield ArrayError(number, f"invalid JSON in element {number}: {exc.msg} "
                                     f"(byte {buf_byte + len(buf[:exc.pos].encode('utf-8'))})")
                    return
            start = buf_byte + len(buf[:pos].encode("utf-8"))
            length = len(buf[pos:end].encode("utf-8"))
            yield ArrayElement(number, value, start, length)
            number += 1
            consume(end)
            pos = skip_ws(0)
            if pos >= len(buf):
                yield ArrayError(number, "the file ends inside the array (truncated download?)")
                return
            if buf[pos] == "]":
                return
            if buf[pos] != ",":
                yield ArrayError(number, f"expected ',' or ']' after element {number - 1}, "
                                 f"found {buf[pos]!r}")
                return
            consume(pos + 1)
    except UnicodeDecodeError as exc:
        yield ArrayError(number, f"the file is not UTF-8: {exc.reason}")
