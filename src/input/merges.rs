//! The merged ranges of a workbook's sheets, read beside the cell reader.
//! A sheet's XML lists its merged ranges after all its rows, so they must
//! be known before the first row is handed on: a thread of its own opens
//! the file, inflates each sheet's XML in workbook order and looks only for
//! the `mergeCells` element at its end, while the cell reader is still
//! loading the shared strings. It keeps nothing but the ranges.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;

use calamine::Dimensions;
use quick_xml::events::Event;

/// One sheet's merged ranges, or why they could not be read.
pub(super) type SheetMerges = (String, Result<Vec<Dimensions>, String>);

/// Reads the merged ranges of every worksheet, in workbook order, and sends
/// them sheet by sheet until the receiver is gone or `done` is set.
pub(super) fn scan(path: &Path, merges: Sender<SheetMerges>, done: Arc<AtomicBool>) {
    let opened = File::open(path)
        .map_err(|error| error.to_string())
        .and_then(|file| {
            zip::ZipArchive::new(BufReader::new(file)).map_err(|error| error.to_string())
        });
    let mut archive = match opened {
        Ok(archive) => archive,
        // The cell reader reports an unreadable workbook itself.
        Err(_) => return,
    };
    let sheets = match sheet_paths(&mut archive) {
        Ok(sheets) => sheets,
        Err(_) => return,
    };
    for (name, part) in sheets {
        if done.load(Ordering::Relaxed) {
            return;
        }
        let ranges = merged_ranges(&mut archive, &part, &done);
        if merges.send((name, ranges)).is_err() {
            return;
        }
    }
}

fn read_part(
    archive: &mut zip::ZipArchive<BufReader<File>>,
    part: &str,
) -> Result<Vec<u8>, String> {
    let mut entry = archive
        .by_name(part)
        .map_err(|error| format!("{part}: {error}"))?;
    let mut bytes = Vec::new();
    entry
        .read_to_end(&mut bytes)
        .map_err(|error| format!("{part}: {error}"))?;
    Ok(bytes)
}

fn attribute(event: &quick_xml::events::BytesStart<'_>, wanted: &str) -> Option<String> {
    event
        .attributes()
        .flatten()
        .find(|attribute| attribute.key.local_name().into_inner() == wanted)
        .and_then(|attribute| {
            attribute
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
        })
        .map(|value| value.into_owned())
}

/// Sheet names and the zip parts of their XML, in workbook order.
fn sheet_paths(
    archive: &mut zip::ZipArchive<BufReader<File>>,
) -> Result<Vec<(String, String)>, String> {
    let rels = read_part(archive, "xl/_rels/workbook.xml.rels")?;
    let mut targets = HashMap::new();
    let mut reader = quick_xml::Reader::from_reader(rels.as_slice());
    let mut buffer = Vec::new();
    loop {
        match reader.read_event_into(&mut buffer) {
            Ok(Event::Start(event) | Event::Empty(event))
                if event.local_name().into_inner() == "Relationship" =>
            {
                if let (Some(id), Some(target)) =
                    (attribute(&event, "Id"), attribute(&event, "Target"))
                {
                    let part = match target.strip_prefix('/') {
                        Some(absolute) => absolute.to_owned(),
                        None => format!("xl/{target}"),
                    };
                    targets.insert(id, part);
                }
            }
            Ok(Event::Eof) => break,
            Err(error) => return Err(error.to_string()),
            _ => {}
        }
        buffer.clear();
    }
    let workbook = read_part(archive, "xl/workbook.xml")?;
    let mut reader = quick_xml::Reader::from_reader(workbook.as_slice());
    let mut sheets = Vec::new();
    loop {
        match reader.read_event_into(&mut buffer) {
            Ok(Event::Start(event) | Event::Empty(event))
                if event.local_name().into_inner() == "sheet" =>
            {
                if let (Some(name), Some(id)) = (attribute(&event, "name"), attribute(&event, "id"))
                    && let Some(part) = targets.get(&id)
                {
                    sheets.push((name, part.clone()));
                }
            }
            Ok(Event::Eof) => break,
            Err(error) => return Err(error.to_string()),
            _ => {}
        }
        buffer.clear();
    }
    Ok(sheets)
}

/// The merged ranges of the sheet XML in `part`: the XML is inflated in
/// chunks and searched for `mergeCells`; only what follows it is parsed.
fn merged_ranges(
    archive: &mut zip::ZipArchive<BufReader<File>>,
    part: &str,
    done: &AtomicBool,
) -> Result<Vec<Dimensions>, String> {
    let mut entry = archive
        .by_name(part)
        .map_err(|error| format!("{part}: {error}"))?;
    let finder = memchr::memmem::Finder::new(b"mergeCells");
    let mut window = Vec::with_capacity(1 << 17);
    let mut chunk = vec![0u8; 1 << 16];
    let mut tail: Option<Vec<u8>> = None;
    loop {
        if done.load(Ordering::Relaxed) {
            return Err("no longer needed".to_owned());
        }
        let read = entry
            .read(&mut chunk)
            .map_err(|error| format!("{part}: {error}"))?;
        if read == 0 {
            break;
        }
        match tail.as_mut() {
            Some(tail) => tail.extend_from_slice(&chunk[..read]),
            None => {
                window.extend_from_slice(&chunk[..read]);
                if let Some(at) = finder.find(&window) {
                    // From the element's `<`, prefix included.
                    let start = window[..at].iter().rposition(|&b| b == b'<').unwrap_or(at);
                    tail = Some(window[start..].to_vec());
                } else {
                    // Keep enough to find the word across two chunks.
                    let keep = window.len().min(16);
                    window.drain(..window.len() - keep);
                }
            }
        }
    }
    let Some(tail) = tail else {
        return Ok(Vec::new());
    };
    let mut reader = quick_xml::Reader::from_reader(tail.as_slice());
    let mut buffer = Vec::new();
    let mut ranges = Vec::new();
    loop {
        match reader.read_event_into(&mut buffer) {
            Ok(Event::Start(event) | Event::Empty(event))
                if event.local_name().into_inner() == "mergeCell" =>
            {
                if let Some(range) = attribute(&event, "ref").and_then(|r| parse_range(&r)) {
                    ranges.push(range);
                }
            }
            Ok(Event::End(event)) if event.local_name().into_inner() == "mergeCells" => break,
            Ok(Event::Eof) => break,
            Err(error) => return Err(format!("{part}: {error}")),
            _ => {}
        }
        buffer.clear();
    }
    Ok(ranges)
}

/// `B2` as (row, column), both from 0.
fn parse_cell(reference: &str) -> Option<(u32, u32)> {
    let split = reference.find(|c: char| c.is_ascii_digit())?;
    let (letters, digits) = reference.split_at(split);
    if letters.is_empty() || !letters.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let column = letters.bytes().try_fold(0u32, |n, b| {
        n.checked_mul(26)?.checked_add(u32::from(b - b'A') + 1)
    })?;
    let row: u32 = digits.parse().ok()?;
    Some((row.checked_sub(1)?, column - 1))
}

/// `A1:H1` (or a single cell) as dimensions.
fn parse_range(reference: &str) -> Option<Dimensions> {
    let (start, end) = reference.split_once(':').unwrap_or((reference, reference));
    Some(Dimensions::new(parse_cell(start)?, parse_cell(end)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_references_parse() {
        assert_eq!(parse_cell("A1"), Some((0, 0)));
        assert_eq!(parse_cell("H12"), Some((11, 7)));
        assert_eq!(parse_cell("AA3"), Some((2, 26)));
        assert_eq!(parse_cell("a1"), None);
        assert_eq!(parse_cell("A0"), None);
        let range = parse_range("B2:D4").unwrap();
        assert_eq!((range.start, range.end), ((1, 1), (3, 3)));
    }

    #[test]
    fn the_scan_finds_each_sheets_ranges_by_name_in_workbook_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("merged.xlsx");
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let format = rust_xlsxwriter::Format::new();
        let first = workbook.add_worksheet();
        first.set_name("说明 & notes").unwrap();
        first.write_string(0, 0, "no merges here").unwrap();
        let second = workbook.add_worksheet();
        second.set_name("Orders").unwrap();
        for row in 1..2000u32 {
            second
                .write_string(row, 0, "a row to make the XML long")
                .unwrap();
        }
        second.merge_range(0, 0, 0, 7, "title", &format).unwrap();
        second.merge_range(5, 3, 6, 4, "M1", &format).unwrap();
        workbook.save(&path).unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        scan(&path, sender, Arc::new(AtomicBool::new(false)));
        let found: Vec<SheetMerges> = receiver.iter().collect();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0], ("说明 & notes".to_owned(), Ok(Vec::new())));
        let (name, ranges) = &found[1];
        assert_eq!(name, "Orders");
        let mut ranges: Vec<_> = ranges
            .as_ref()
            .unwrap()
            .iter()
            .map(|r| (r.start, r.end))
            .collect();
        ranges.sort();
        assert_eq!(ranges, [((0, 0), (0, 7)), ((5, 3), (6, 4))]);
    }
}
