//! Limits on the XML inside a workbook, checked as each part is inflated
//! and before calamine parses it. calamine's XML reader keeps a whole
//! event (a text run, a tag, a comment) in memory, joins a cell's rich-text
//! runs into one string, and keeps every shared string and style; a small
//! zip can inflate to gigabytes of any of these. The guard walks the bytes
//! once, keeping nothing but counters, and refuses a part whose events,
//! cells, rows or totals pass limits that no workbook Excel writes comes
//! near, so that what calamine later holds is bounded.

use std::fmt;

/// Bytes between two tags (whitespace between rows counts too).
pub(super) const MAX_TEXT_RUN: u64 = 1 << 20;
/// Bytes of one tag, attributes included; also one comment or CDATA.
pub(super) const MAX_TAG: u64 = 1 << 20;
/// Bytes of one cell's XML (`<c>…</c>`) or one shared string's
/// (`<si>…</si>`): Excel keeps at most 32,767 characters in a cell.
pub(super) const MAX_CELL_XML: u64 = 1 << 20;
/// Bytes of one row's XML: 16,384 cells of an ordinary export take under
/// 1 MB.
pub(super) const MAX_ROW_XML: u64 = 2 << 20;
/// The shared strings part as a whole, and how many strings it holds.
pub(super) const MAX_SHARED_STRINGS_XML: u64 = 64 << 20;
pub(super) const MAX_SHARED_STRINGS: u64 = 2_000_000;
/// Any other part calamine reads whole (workbook, relationships, styles,
/// theme): real ones are kilobytes.
pub(super) const MAX_OTHER_PART: u64 = 16 << 20;

/// Why a part was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Violation {
    /// The sheet row (1-based) the bytes belong to, in a worksheet.
    pub row: Option<u64>,
    /// The cell reference (`A2`), when inside a cell.
    pub cell: Option<String>,
    /// The place is after `row`, between rows.
    pub after_row: bool,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.row, &self.cell) {
            (_, Some(cell)) => write!(f, "cell {cell}: {}", self.message),
            (Some(row), None) if self.after_row => write!(f, "after row {row}: {}", self.message),
            (Some(row), None) => write!(f, "row {row}: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

/// What a part is, from its root element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    Unknown,
    Worksheet,
    SharedStrings,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Text,
    /// Inside `<…>`; `quote` is the open attribute quote, if any.
    Tag {
        quote: Option<u8>,
    },
    /// Inside a comment, CDATA section or processing instruction, which
    /// end only at `terminator`; `matched` bytes of it seen so far.
    Special {
        terminator: &'static [u8],
        matched: usize,
    },
}

/// How much of a tag is kept to read its name and attributes.
const HEAD: usize = 1024;

/// A streaming check of one XML part.
pub(super) struct XmlGuard {
    state: State,
    /// Bytes fed so far.
    offset: u64,
    /// Where the current text run or tag began.
    started: u64,
    head: Vec<u8>,
    previous: u8,
    root: Root,
    cell_started: Option<u64>,
    row_started: Option<u64>,
    string_started: Option<u64>,
    row: Option<u64>,
    /// The open cell's reference (`XFD1048576` at most), kept without an
    /// allocation: there is one per cell.
    cell: ([u8; 16], usize),
    strings: u64,
}

impl Default for XmlGuard {
    fn default() -> Self {
        XmlGuard::new()
    }
}

impl XmlGuard {
    pub(super) fn new() -> XmlGuard {
        XmlGuard {
            state: State::Text,
            offset: 0,
            started: 0,
            head: Vec::with_capacity(HEAD),
            previous: 0,
            root: Root::Unknown,
            cell_started: None,
            row_started: None,
            string_started: None,
            row: None,
            cell: ([0; 16], 0),
            strings: 0,
        }
    }

    fn refuse(&self, message: String) -> Violation {
        let in_sheet = self.root == Root::Worksheet;
        Violation {
            row: self.row.filter(|_| in_sheet),
            cell: (in_sheet && self.cell_started.is_some() && self.cell.1 > 0)
                .then(|| String::from_utf8_lossy(&self.cell.0[..self.cell.1]).into_owned()),
            after_row: self.row_started.is_none(),
            message,
        }
    }

    /// Checks the next bytes of the part.
    pub(super) fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Violation> {
        while !bytes.is_empty() {
            match self.state {
                // Values are short, blank space may be long: a few bytes
                // looked at in a loop, then a search.
                State::Text => match bytes
                    .iter()
                    .take(16)
                    .position(|&b| b == b'<')
                    .or_else(|| memchr::memchr(b'<', bytes))
                {
                    Some(at) => {
                        self.offset += at as u64;
                        self.check_text_run()?;
                        self.offset += 1;
                        bytes = &bytes[at + 1..];
                        self.started = self.offset - 1;
                        self.head.clear();
                        self.previous = b'<';
                        self.state = State::Tag { quote: None };
                    }
                    None => {
                        self.offset += bytes.len() as u64;
                        self.check_text_run()?;
                        bytes = &[];
                    }
                },
                // Past its first bytes (which say whether it is a comment,
                // CDATA or a declaration), a tag's plain bytes are skipped
                // in runs, up to its next quote or `>`.
                State::Tag { quote }
                    if self.head.len() >= 9
                        || self.head.first().is_some_and(|b| !matches!(b, b'!' | b'?')) =>
                {
                    // Tags are short: a plain loop beats a search call.
                    let run = match quote {
                        Some(open) => bytes.iter().position(|&b| b == open),
                        None => bytes.iter().position(|&b| matches!(b, b'>' | b'"' | b'\'')),
                    }
                    .unwrap_or(bytes.len());
                    if run > 0 {
                        let plain = &bytes[..run];
                        let room = HEAD.saturating_sub(self.head.len()).min(run);
                        self.head.extend_from_slice(&plain[..room]);
                        self.previous = plain[run - 1];
                        self.offset += run as u64;
                        bytes = &bytes[run..];
                        if self.offset - self.started > MAX_TAG {
                            return Err(
                                self.refuse(format!("a tag is longer than {} MB", MAX_TAG >> 20))
                            );
                        }
                        continue;
                    }
                    let byte = bytes[0];
                    bytes = &bytes[1..];
                    self.offset += 1;
                    if quote.is_none() && byte == b'>' {
                        self.end_tag()?;
                        self.state = State::Text;
                        self.started = self.offset;
                        continue;
                    }
                    self.state = State::Tag {
                        quote: if quote.is_some() { None } else { Some(byte) },
                    };
                    self.previous = byte;
                    if self.head.len() < HEAD {
                        self.head.push(byte);
                    }
                }
                State::Tag { quote } => {
                    let byte = bytes[0];
                    bytes = &bytes[1..];
                    self.offset += 1;
                    if self.offset - self.started > MAX_TAG {
                        return Err(
                            self.refuse(format!("a tag is longer than {} MB", MAX_TAG >> 20))
                        );
                    }
                    if quote.is_none() && byte == b'>' {
                        self.end_tag()?;
                        self.state = State::Text;
                        self.started = self.offset;
                        continue;
                    }
                    let quote = match quote {
                        Some(open) if byte == open => None,
                        None if byte == b'"' || byte == b'\'' => Some(byte),
                        other => other,
                    };
                    self.state = State::Tag { quote };
                    self.previous = byte;
                    if self.head.len() < HEAD {
                        self.head.push(byte);
                        if quote.is_none() {
                            self.special_start()?;
                        }
                    }
                }
                State::Special {
                    terminator,
                    mut matched,
                } => {
                    let byte = bytes[0];
                    bytes = &bytes[1..];
                    self.offset += 1;
                    if self.offset - self.started > MAX_TAG {
                        return Err(self.refuse(format!(
                            "a comment or CDATA section is longer than {} MB",
                            MAX_TAG >> 20
                        )));
                    }
                    matched = if byte == terminator[matched] {
                        matched + 1
                    } else if terminator[..matched].iter().all(|&b| b == byte) {
                        // `--->` still ends a comment: the run of dashes stays.
                        matched
                    } else {
                        usize::from(byte == terminator[0])
                    };
                    if matched == terminator.len() {
                        self.state = State::Text;
                        self.started = self.offset;
                    } else {
                        self.state = State::Special {
                            terminator,
                            matched,
                        };
                    }
                }
            }
        }
        self.check_spans()
    }

    /// Checks the part's end: the totals were checked on the way.
    pub(super) fn finish(&self) -> Result<(), Violation> {
        self.check_spans()
    }

    fn check_text_run(&self) -> Result<(), Violation> {
        if self.offset - self.started > MAX_TEXT_RUN {
            if self.cell_started.is_some() || self.string_started.is_some() {
                return self.check_spans().and_then(|()| Err(self.cell_too_long()));
            }
            return Err(self.refuse(format!(
                "more than {} MB of text or blank space between two tags",
                MAX_TEXT_RUN >> 20
            )));
        }
        Ok(())
    }

    /// Comments, CDATA and processing instructions end at their own
    /// terminator; a document type declaration (entities) is never in a
    /// workbook and is refused.
    fn special_start(&mut self) -> Result<(), Violation> {
        let terminator: &'static [u8] = match self.head.as_slice() {
            b"?" => b"?>",
            b"!--" => b"-->",
            b"![CDATA[" => b"]]>",
            [b'!', rest @ ..] if !b"--".starts_with(rest) && !b"[CDATA[".starts_with(rest) => {
                return Err(self
                    .refuse("the XML declares a document type, which no workbook has".to_owned()));
            }
            _ => return Ok(()),
        };
        self.state = State::Special {
            terminator,
            matched: 0,
        };
        Ok(())
    }

    fn end_tag(&mut self) -> Result<(), Violation> {
        let head = self.head.as_slice();
        let closing = head.first() == Some(&b'/');
        let self_closing = self.previous == b'/';
        let name_bytes = &head[usize::from(closing)..];
        let name_end = name_bytes
            .iter()
            .position(|b| b.is_ascii_whitespace() || *b == b'/' || *b == b'>')
            .unwrap_or(name_bytes.len());
        let name = &name_bytes[..name_end];
        let local = name.rsplit(|b| *b == b':').next().unwrap_or(name);
        if self.root == Root::Unknown && !closing {
            self.root = match local {
                b"worksheet" => Root::Worksheet,
                b"sst" => Root::SharedStrings,
                _ => Root::Other,
            };
        }
        // calamine reserves room for the count an `sst` tag claims,
        // wherever the tag stands: the claim is checked wherever it is.
        if local == b"sst" && !closing {
            let whole = self.offset - self.started <= HEAD as u64;
            let refused = match attribute(head, b"uniqueCount") {
                _ if !whole => Some("its tag is too long to read".to_owned()),
                Some(count) => count
                    .parse::<u64>()
                    .map_or(true, |n| n > MAX_SHARED_STRINGS)
                    .then(|| format!("it says it has {count} distinct texts")),
                None => None,
            };
            if let Some(why) = refused {
                return Err(self.refuse(format!(
                    "the workbook's list of shared texts is refused: {why}; at most \
                     {MAX_SHARED_STRINGS} are read"
                )));
            }
        }
        match (self.root, local, closing) {
            (Root::Worksheet, b"row", false) if !self_closing => {
                self.row_started = Some(self.started);
                self.row = attribute(head, b"r")
                    .and_then(|r| r.parse().ok())
                    .or(Some(self.row.unwrap_or(0) + 1));
            }
            (Root::Worksheet, b"row", true) => {
                self.check_spans()?;
                self.row_started = None;
            }
            (Root::Worksheet, b"c", false) if !self_closing => {
                self.cell_started = Some(self.started);
                self.cell.1 = 0;
                if let Some(reference) = attribute_bytes(head, b"r")
                    && reference.len() <= self.cell.0.len()
                {
                    self.cell.0[..reference.len()].copy_from_slice(reference);
                    self.cell.1 = reference.len();
                }
            }
            (Root::Worksheet, b"c", true) => {
                self.check_spans()?;
                self.cell_started = None;
            }
            (Root::SharedStrings, b"si", false) => {
                self.strings += 1;
                if self.strings > MAX_SHARED_STRINGS {
                    return Err(self.refuse(
                        "the workbook has more than 2,000,000 distinct texts (the limit)"
                            .to_owned(),
                    ));
                }
                if !self_closing {
                    self.string_started = Some(self.started);
                }
            }
            (Root::SharedStrings, b"si", true) => {
                self.check_spans()?;
                self.string_started = None;
            }
            _ => {}
        }
        Ok(())
    }

    fn cell_too_long(&self) -> Violation {
        let what = if self.string_started.is_some() {
            "one of the workbook's shared texts"
        } else {
            "the cell"
        };
        self.refuse(format!(
            "{what} holds more than {} MB (Excel keeps at most 32,767 characters in a cell)",
            MAX_CELL_XML >> 20
        ))
    }

    /// The open cell, row or shared string, and the part's total.
    fn check_spans(&self) -> Result<(), Violation> {
        let since = |start: Option<u64>| start.map_or(0, |start| self.offset - start);
        if since(self.cell_started) > MAX_CELL_XML {
            return Err(self.cell_too_long());
        }
        if since(self.row_started) > MAX_ROW_XML {
            return Err(self.refuse(format!("the row holds more than {} MB", MAX_ROW_XML >> 20)));
        }
        if since(self.string_started) > MAX_CELL_XML {
            return Err(self.cell_too_long());
        }
        let (limit, what) = match self.root {
            Root::Worksheet => return Ok(()),
            Root::SharedStrings => (MAX_SHARED_STRINGS_XML, "the workbook's shared texts"),
            Root::Unknown | Root::Other => (MAX_OTHER_PART, "this part of the workbook"),
        };
        if self.offset > limit {
            return Err(self.refuse(format!("{what} take more than {} MB", limit >> 20)));
        }
        Ok(())
    }
}

/// The value of attribute `name` in a tag's kept head, as text.
fn attribute(head: &[u8], name: &[u8]) -> Option<String> {
    attribute_bytes(head, name).and_then(|value| String::from_utf8(value.to_vec()).ok())
}

/// The value of attribute `name` in a tag's kept head (white space
/// allowed around `=`), unescaped only as far as plain digits and letters
/// need.
fn attribute_bytes<'h>(head: &'h [u8], name: &[u8]) -> Option<&'h [u8]> {
    let mut rest = head;
    while let Some(at) = memchr::memmem::find(rest, name) {
        let before_ok = at > 0 && rest[at - 1].is_ascii_whitespace();
        let after = rest[at + name.len()..].trim_ascii_start();
        if before_ok && let Some(after) = after.strip_prefix(b"=") {
            let after = after.trim_ascii_start();
            let quote = *after.first()?;
            if quote != b'"' && quote != b'\'' {
                return None;
            }
            let value = &after[1..];
            let end = memchr::memchr(quote, value)?;
            return Some(&value[..end]);
        }
        rest = &rest[at + name.len()..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(parts: &[&[u8]]) -> Result<(), Violation> {
        let mut guard = XmlGuard::new();
        for part in parts {
            guard.feed(part)?;
        }
        guard.finish()
    }

    fn check_in_chunks(xml: &[u8], chunk: usize) -> Result<(), Violation> {
        let mut guard = XmlGuard::new();
        for part in xml.chunks(chunk) {
            guard.feed(part)?;
        }
        guard.finish()
    }

    const SHEET: &[u8] = br#"<?xml version="1.0"?><!-- a comment > with < brackets --><worksheet xmlns="x"><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1"/></row><row r="2"><c r="A2" t="inlineStr"><is><t><![CDATA[a < b > c]]></t></is></c></row></sheetData></worksheet>"#;

    #[test]
    fn an_ordinary_sheet_passes_in_any_chunking() {
        for chunk in [1, 2, 3, 7, 64, SHEET.len()] {
            assert_eq!(check_in_chunks(SHEET, chunk), Ok(()), "chunk {chunk}");
        }
    }

    #[test]
    fn a_huge_cell_is_refused_with_its_row_and_reference() {
        let filler = vec![b'x'; 1000];
        let mut guard = XmlGuard::new();
        guard
            .feed(br#"<worksheet><sheetData><row r="7"><c r="C7" t="inlineStr"><is><t>"#)
            .unwrap();
        let mut refused = None;
        for _ in 0..2000 {
            // Tags between runs, so that only the cell's limit applies.
            if let Err(violation) = guard.feed(&filler).and_then(|()| guard.feed(b"<r/>")) {
                refused = Some(violation);
                break;
            }
        }
        let violation = refused.expect("refused before 2 MB");
        assert_eq!(violation.row, Some(7));
        assert_eq!(violation.cell.as_deref(), Some("C7"));
        assert!(violation.message.contains("32,767"), "{violation}");
    }

    #[test]
    fn long_runs_tags_and_comments_are_refused() {
        let blank = vec![b' '; (MAX_TEXT_RUN + 1) as usize];
        let error = check(&[b"<worksheet><sheetData>", &blank]).unwrap_err();
        assert!(error.message.contains("blank space"), "{error}");
        // `<` inside a quoted attribute does not end the tag's count.
        let mut attribute = b"<worksheet a=\"".to_vec();
        attribute.extend(std::iter::repeat_n(b"x<y>".as_slice(), 300_000).flatten());
        assert!(check(&[&attribute]).unwrap_err().message.contains("tag"));
        let mut comment = b"<worksheet><!--".to_vec();
        comment.extend(std::iter::repeat_n(b"<a>".as_slice(), 400_000).flatten());
        assert!(check(&[&comment]).unwrap_err().message.contains("comment"));
        assert!(
            check(&[b"<!DOCTYPE x [<!ENTITY a \"b\">]><x/>"])
                .unwrap_err()
                .message
                .contains("document type")
        );
    }

    #[test]
    fn shared_strings_are_capped_in_count_and_size() {
        let error =
            check(&[br#"<sst xmlns="x" count="9" uniqueCount="999999999999">"#]).unwrap_err();
        assert!(error.message.contains("999999999999"), "{error}");
        // Wherever the tag stands, however its attribute is written.
        for claim in [
            &br#"<wrap><x:sst uniqueCount = '4000000000'>"#[..],
            br#"<sst uniqueCount="-1">"#,
        ] {
            assert!(
                check(&[claim]).is_err(),
                "{}",
                String::from_utf8_lossy(claim)
            );
        }
        let mut padded = b"<sst ".to_vec();
        padded.extend(vec![b' '; 2000]);
        padded.extend(b"uniqueCount=\"4000000000\">");
        assert!(check(&[&padded]).unwrap_err().message.contains("too long"));
        let mut guard = XmlGuard::new();
        guard.feed(b"<sst>").unwrap();
        let many = b"<si/>".repeat(100_000);
        let refused = (0..30).find_map(|_| guard.feed(&many).err()).unwrap();
        assert!(refused.message.contains("distinct texts"), "{refused}");
        // Another part read whole: capped in size.
        let mut guard = XmlGuard::new();
        guard.feed(b"<styleSheet>").unwrap();
        let styles = b"<xf numFmtId=\"0\"/>".repeat(100_000);
        let refused = (0..20).find_map(|_| guard.feed(&styles).err()).unwrap();
        assert!(refused.message.contains("16 MB"), "{refused}");
    }

    #[test]
    fn a_wide_row_is_refused_past_its_limit() {
        let mut guard = XmlGuard::new();
        guard.feed(b"<worksheet><sheetData><row r=\"3\">").unwrap();
        let cells = b"<c r=\"A3\"><v>12345678</v></c>".repeat(10_000);
        let refused = (0..20).find_map(|_| guard.feed(&cells).err()).unwrap();
        assert_eq!(refused.row, Some(3));
        assert!(refused.message.contains("row holds"), "{refused}");
    }
}
