//! A small, defensive XML reader: turns a FetchXML document into an element tree.
//!
//! Security invariants (FetchXML arrives from untrusted clients and sync partners):
//! - input longer than [`MAX_INPUT_BYTES`] is refused before any parsing;
//! - a `<!DOCTYPE …>` is refused, so no entity is ever declared, let alone expanded;
//! - only the five predefined entities and character references are resolved;
//! - nesting deeper than [`MAX_DEPTH`] elements is refused, so recursion over the tree is bounded.

use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::reader::Reader;

use crate::QueryError;

pub const MAX_INPUT_BYTES: usize = 1024 * 1024;
pub const MAX_DEPTH: usize = 32;

#[derive(Debug, Default)]
pub struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<Element>,
    /// Character data directly inside the element (entity and character references resolved).
    pub text: String,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn malformed(reader: &Reader<&[u8]>, message: impl ToString) -> QueryError {
    QueryError::MalformedXml {
        position: reader.error_position().max(reader.buffer_position()),
        message: message.to_string(),
    }
}

/// Parses `xml` into its root element.
pub fn parse(xml: &str) -> Result<Element, QueryError> {
    if xml.len() > MAX_INPUT_BYTES {
        return Err(QueryError::TooLarge {
            size: xml.len(),
            max: MAX_INPUT_BYTES,
        });
    }
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let event = reader.read_event().map_err(|e| malformed(&reader, e))?;
        match event {
            Event::Start(start) => {
                check_depth(&stack)?;
                stack.push(element(&reader, &start)?);
            }
            Event::Empty(start) => {
                check_depth(&stack)?;
                let el = element(&reader, &start)?;
                attach(&reader, &mut stack, &mut root, el)?;
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| malformed(&reader, "closing tag without opening tag"))?;
                attach(&reader, &mut stack, &mut root, el)?;
            }
            Event::Text(t) => push_text(&reader, &mut stack, &t.xml_content(XmlVersion::Implicit1_0))?,
            Event::CData(c) => push_text(&reader, &mut stack, &c.xml_content(XmlVersion::Implicit1_0))?,
            Event::GeneralRef(r) => {
                let resolved = resolve_reference(&reader, &r)?;
                push_text(&reader, &mut stack, &resolved)?;
            }
            Event::DocType(_) => return Err(QueryError::DoctypeNotAllowed),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(malformed(
            &reader,
            format!("element <{}> is not closed", open.name),
        ));
    }
    root.ok_or_else(|| malformed(&reader, "the document has no root element"))
}

fn check_depth(stack: &[Element]) -> Result<(), QueryError> {
    if stack.len() >= MAX_DEPTH {
        Err(QueryError::TooDeep { max: MAX_DEPTH })
    } else {
        Ok(())
    }
}

fn element(reader: &Reader<&[u8]>, start: &BytesStart<'_>) -> Result<Element, QueryError> {
    let name = start.name().as_ref().to_owned();
    let mut attributes = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| malformed(reader, e))?;
        let key = attr.key.as_ref().to_owned();
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| malformed(reader, e))?;
        attributes.push((key, value.into_owned()));
    }
    Ok(Element {
        name,
        attributes,
        ..Element::default()
    })
}

fn attach(
    reader: &Reader<&[u8]>,
    stack: &mut [Element],
    root: &mut Option<Element>,
    el: Element,
) -> Result<(), QueryError> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None if root.is_none() => *root = Some(el),
        None => return Err(malformed(reader, "the document has more than one root element")),
    }
    Ok(())
}

fn push_text(reader: &Reader<&[u8]>, stack: &mut [Element], text: &str) -> Result<(), QueryError> {
    match stack.last_mut() {
        Some(el) => el.text.push_str(text),
        None if text.trim().is_empty() => {}
        None => return Err(malformed(reader, "text outside the root element")),
    }
    Ok(())
}

fn resolve_reference(reader: &Reader<&[u8]>, r: &BytesRef<'_>) -> Result<String, QueryError> {
    if let Some(c) = r.resolve_char_ref().map_err(|e| malformed(reader, e))? {
        return Ok(c.to_string());
    }
    let name: &str = r;
    resolve_predefined_entity(name)
        .map(str::to_owned)
        .ok_or_else(|| malformed(reader, format!("unknown entity reference '&{name};'")))
}

/// Escapes text for use inside an attribute value or element content. Whitespace other than
/// the space is written as character references so that attribute normalization keeps it.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}
