"""A small reader of PDBx/mmCIF text (the wwPDB archive format): categories as tables.

What it reads (the CIF 1.1 syntax the wwPDB archive files use; STAR/CIF specification,
IUCr, and the PDBx/mmCIF dictionary at mmcif.wwpdb.org): one `data_<id>` block;
single items `_category.item value`; `loop_` tables (a header of `_category.item` names,
then values row by row, wrapping over lines); values bare, in single or double quotes
(a quote closes only when followed by white space), or as semicolon text fields (a line
starting with `;` opens and closes); `#` comments; `.` (inapplicable) and `?` (unknown)
are both read as None.

It knows nothing of datasets: `read_mmcif(text)` returns `{category: [row, ...]}` with each
row a dict `item -> str | None` (a category of single items is one row). A file that ends
inside a text field or a loop whose values do not fill whole rows raises `CifError`.
Nothing is evaluated; values stay strings (callers convert what they use).
"""

from __future__ import annotations

from collections.abc import Iterator


class CifError(ValueError):
    """Text that is not well-formed CIF (truncated text field, ragged loop, no data block)."""


def _split_line(line: str, number: int) -> Iterator[tuple[str | None, bool]]:
    """The tokens of one line (not a text field); quoted values keep their inner text."""
    if "'" not in line and '"' not in line and "#" not in line:  # most lines: plain split
        for token in line.split():
            yield (None if token in (".", "?") else token), False
        return
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c.isspace():
            i += 1
            continue
        if c == "#":
            return
        if c in "'\"":
            j = i + 1
            while True:
                j = line.find(c, j)
                if j < 0:
                    raise CifError(f"line {number}: unterminated {c}-quoted value")
                if j + 1 >= n or line[j + 1].isspace():
                    break
                j += 1
            yield line[i + 1 : j], True
            i = j + 1
            continue
        j = i
        while j < n and not line[j].isspace():
            j += 1
        token = line[i:j]
        yield (None if token in (".", "?") else token), False
        i = j


def _tokens(text: str) -> Iterator[tuple[str | None, bool, int]]:
    """(token, is_value_literal, line number): semicolon text fields are one literal token;
    quoted tokens are literals too (a quoted 'loop_' is a value, not a keyword)."""
    lines = text.splitlines()
    k = 0
    while k < len(lines):
        line = lines[k]
        if line.startswith(";"):
            start = k
            parts = [line[1:]]
            k += 1
            while k < len(lines) and not lines[k].startswith(";"):
                parts.append(lines[k])
                k += 1
            if k >= len(lines):
                raise CifError(f"line {start + 1}: text field never closed (file truncated?)")
            yield "\n".join(parts).strip("\n"), True, start + 1
            k += 1
            continue
        for token, quoted in _split_line(line, k + 1):
            yield token, quoted, k + 1
        k += 1


def read_mmcif(text: str) -> dict[str, list[dict[str, str | None]]]:
    """`{category: rows}` of the file's first data block (see the module docstring)."""
    tables: dict[str, list[dict[str, str | None]]] = {}
    singles: dict[str, dict[str, str | None]] = {}
    seen_block = False
    stream = _tokens(text)
    pending: tuple[str | None, bool, int] | None = None

    def take() -> tuple[str | None, bool, int] | None:
        nonlocal pending
        if pending is not None:
            tok, pending = pending, None
            return tok
        return next(stream, None)

    while (tok := take()) is not None:
        token, literal, number = tok
        if token is None:
            raise CifError(f"line {number}: a value with no item name")
        low = token.lower()
        if not literal and low.startswith("data_"):
            if seen_block:
                break  # the archive holds one entry per file: the first block is it
            seen_block = True
            continue
        if not literal and low == "loop_":
            names: list[str] = []
            values: list[str | None] = []
            while (nxt := take()) is not None:
                t, lit, _ = nxt
                if t is not None and not lit:
                    first = t[0]
                    if first == "_":
                        if not values:
                            names.append(t)
                            continue
                        pending = nxt
                        break
                    if first in "lLdD" and (t.lower() == "loop_"
                                            or t.lower().startswith("data_")):
                        pending = nxt
                        break
                values.append(t)
            if not names:
                raise CifError(f"line {number}: loop_ without item names")
            if len(values) % len(names):
                raise CifError(f"line {number}: loop of {names[0].split('.')[0]} has "
                               f"{len(values)} values for {len(names)} columns (truncated?)")
            category = names[0][1:].split(".", 1)[0]
            items = [name.split(".", 1)[1] if "." in name else name for name in names]
            rows = tables.setdefault(category, [])
            for r in range(0, len(values), len(names)):
                rows.append(dict(zip(items, values[r : r + len(names)], strict=True)))
            continue
        if not literal and token.startswith("_"):
            value = take()
            if value is None:
                raise CifError(f"line {number}: item {token} has no value (file truncated?)")
            category, _, item = token[1:].partition(".")
            singles.setdefault(category, {})[item] = value[0]
            continue
        raise CifError(f"line {number}: unexpected value {token[:20]!r} outside a loop")
    if not seen_block:
        raise CifError("no data_ block: not an mmCIF file")
    for category, row in singles.items():
        tables.setdefault(category, []).append(row)
    return tables
