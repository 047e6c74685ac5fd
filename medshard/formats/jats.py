"""JATS article XML (PubMed Central's `.nxml`): a safe parse and the figures it declares.

The parser is expat with nothing fetched and nothing expanded beyond XML's five
predefined entities and character references: a document that declares any entity
(the "billion laughs" expansion, external entities) or refers to one is refused,
external DTDs are never loaded (the JATS `<!DOCTYPE ... "JATS-archivearticle1.dtd">`
line is read and ignored), parameter entities are not parsed. This is what
defusedxml enforces, written with the standard library only.

Figures follow JATS 1.x: `<fig id=...>` with an optional `<label>`, a `<caption>`
(`<title>` and `<p>` children) and `<graphic xlink:href="name">`, where the href
names a file in the article package, usually without its extension.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.parsers import expat

XLINK = "http://www.w3.org/1999/xlink"
MAX_XML_BYTES = 64 << 20


class UnsafeXML(ValueError):
    """The document declares or uses an entity, or is not well-formed."""


def _refuse(what: str):
    def handler(*args):
        raise UnsafeXML(f"refused: the document {what} (entities are never expanded)")
    return handler


def parse_xml_safely(data: bytes) -> ET.Element:
    """The element tree of `data`; UnsafeXML when it declares entities or is malformed.

    Namespaced names come out in ElementTree's `{uri}local` form."""
    if len(data) > MAX_XML_BYTES:
        raise UnsafeXML(f"XML of {len(data)} bytes is larger than {MAX_XML_BYTES}")
    builder = ET.TreeBuilder()
    p = expat.ParserCreate(namespace_separator="}")
    p.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    p.EntityDeclHandler = _refuse("declares an entity")
    p.UnparsedEntityDeclHandler = _refuse("declares an unparsed entity")
    p.ExternalEntityRefHandler = _refuse("refers to an external entity")
    p.SkippedEntityHandler = _refuse("refers to an undeclared entity")
    p.DefaultHandler = _refuse_entity_refs  # only called for text expat does not expand

    def name(n: str) -> str:
        return "{" + n if "}" in n else n

    def start(tag: str, attrs: dict[str, str]) -> None:
        builder.start(name(tag), {name(k): v for k, v in attrs.items()})

    p.StartElementHandler = start
    p.EndElementHandler = lambda tag: builder.end(name(tag))
    p.CharacterDataHandler = builder.data
    p.buffer_text = True
    try:
        p.Parse(data, True)
    except expat.ExpatError as exc:
        raise UnsafeXML(f"not well-formed XML: {expat.errors.messages[exc.code]} "
                        f"(line {exc.lineno})") from None
    return builder.close()


def _refuse_entity_refs(text: str) -> None:
    if text.startswith("&") and text.endswith(";"):
        raise UnsafeXML(f"refused: the document refers to entity {text} (never expanded)")


@dataclass(frozen=True)
class Figure:
    """One `<fig>`: its id (may be empty), label, caption text and graphic hrefs."""

    fig_id: str
    label: str
    caption: str
    graphics: tuple[str, ...]


def _text(el: ET.Element | None) -> str:
    """The element's text, whitespace runs collapsed to one space."""
    return " ".join("".join(el.itertext()).split()) if el is not None else ""


def _caption_text(caption: ET.Element | None) -> str:
    """A caption's title and paragraphs, one space between blocks."""
    if caption is None:
        return ""
    parts = [" ".join((caption.text or "").split())]
    for child in caption:
        parts += [_text(child), " ".join((child.tail or "").split())]
    return " ".join(p for p in parts if p)


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def figures(article: ET.Element) -> list[Figure]:
    """Every `<fig>` of the article in document order (body, back and floats-group)."""
    out = []
    for fig in article.iter():
        if _local(fig.tag) != "fig":
            continue
        label = caption = None
        graphics = []
        for el in fig.iter():
            local = _local(el.tag)
            if local == "label" and label is None:
                label = el
            elif local == "caption" and caption is None:
                caption = el
            elif local == "graphic":
                href = el.get(f"{{{XLINK}}}href") or el.get("href")
                if href:
                    graphics.append(href)
        out.append(Figure(fig.get("id", ""), _text(label), _caption_text(caption),
                          tuple(graphics)))
    return out


def article_ids(article: ET.Element) -> dict[str, str]:
    """`<article-id pub-id-type=...>` values of the article's front matter (pmc, pmid, doi)."""
    ids: dict[str, str] = {}
    for el in article.iter():
        if _local(el.tag) == "article-id" and el.get("pub-id-type"):
            ids.setdefault(el.get("pub-id-type"), (el.text or "").strip())
    return ids
