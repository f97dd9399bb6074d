//! The merged ranges of a workbook's sheets, read beside the cell reader.
//! A sheet's XML lists its merged ranges after all its rows, so they must
//! be known before the first row is handed on: a thread of its own opens
//! the file, inflates each sheet's XML in workbook order and looks only for
//! the `mergeCells` element at its end, while the cell reader is still
//! loading the shared strings. It keeps nothing but the ranges.
//!
//! The same thread is the workbook's gate (see `xml_guard`): before the
//! cell reader may open the file, it inflates every other XML part once
//! and checks it against the guard's limits; each sheet is checked in the
//! pass that looks for its ranges, which ends before its cells are read.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, SyncSender};

use calamine::Dimensions;
use quick_xml::events::Event;

use super::xml_guard::XmlGuard;

/// A workbook's zip, as the scan reads it.
type Archive = zip::ZipArchive<BufReader<File>>;

/// Sheet names and the zip parts of their XML, in workbook order.
type SheetParts = Vec<(String, String)>;

/// Why a sheet's ranges are not known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ScanError {
    /// The sheet passes a limit: it must not be read at all.
    Refused(String),
    /// The scan could not read it (and so the sheet is not read either).
    Unreadable(String),
}

/// One sheet's merged ranges, or why they are not known.
pub(super) type SheetMerges = (String, Result<Vec<Dimensions>, ScanError>);

/// The merged ranges of a sheet's XML are cut off past this size (about a
/// million ranges).
const MAX_MERGES_XML: usize = 32 << 20;

/// Checks every XML part that is not a worksheet and answers on `gate`
/// (a refusal names the part and the limit); then reads the merged ranges
/// of every worksheet, in workbook order, checking the sheet on the way,
/// and sends them sheet by sheet until the receiver is gone or `done` is
/// set.
pub(super) fn scan(
    path: &Path,
    gate: SyncSender<Result<(), String>>,
    merges: Sender<SheetMerges>,
    done: Arc<AtomicBool>,
) {
    let Some((mut archive, sheets, checked)) = open_and_check(path) else {
        // The cell reader reports an unreadable workbook itself.
        let _ = gate.send(Ok(()));
        return;
    };
    let refused = checked.is_err();
    if gate.send(checked).is_err() || refused {
        return;
    }
    for (name, part) in sheets {
        if done.load(Ordering::Relaxed) {
            return;
        }
        let ranges = merged_ranges(&mut archive, &part, &done).map_err(|error| match error {
            ScanError::Refused(message) => {
                ScanError::Refused(format!("sheet \"{name}\", {message}"))
            }
            other => other,
        });
        if merges.send((name, ranges)).is_err() {
            return;
        }
    }
}

/// The gate alone: every XML part but the worksheets checked, for a
/// caller that reads no cells (the sheets' names only).
pub(super) fn check_workbook(path: &Path) -> Result<(), String> {
    // A file that is no zip: calamine reports it itself.
    open_and_check(path).map_or(Ok(()), |(_, _, checked)| checked)
}

/// Opens the workbook, finds its sheets and checks every other part;
/// `None` when the file is not a zip at all. Without the workbook's own
/// list of sheets, every sheet is checked here too.
fn open_and_check(path: &Path) -> Option<(Archive, SheetParts, Result<(), String>)> {
    let file = File::open(path).ok()?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file)).ok()?;
    let sheets = sheet_paths(&mut archive).unwrap_or_default();
    let checked = check_other_parts(&mut archive, &sheets);
    Some((archive, sheets, checked))
}

/// Inflates and checks every XML part but the worksheets in `sheets`.
fn check_other_parts(archive: &mut Archive, sheets: &[(String, String)]) -> Result<(), String> {
    let mut chunk = vec![0u8; 1 << 16];
    for index in 0..archive.len() {
        let mut entry = match archive.by_index(index) {
            Ok(entry) => entry,
            // calamine meets the same damage and says so.
            Err(_) => continue,
        };
        let Ok(name) = entry.name().map(|name| name.into_owned()) else {
            continue;
        };
        let lower = name.to_ascii_lowercase();
        let is_xml = lower.ends_with(".xml") || lower.ends_with(".rels");
        if !is_xml || sheets.iter().any(|(_, part)| *part == name) {
            continue;
        }
        let mut guard = XmlGuard::new();
        loop {
            let read = match entry.read(&mut chunk) {
                Ok(0) => break,
                Ok(read) => read,
                // A damaged part is calamine's to report, if it reads it.
                Err(_) => break,
            };
            if let Err(violation) = guard.feed(&chunk[..read]) {
                return Err(format!("{name}: {violation}"));
            }
        }
        guard
            .finish()
            .map_err(|violation| format!("{name}: {violation}"))?;
    }
    Ok(())
}

/// A part read whole (the workbook and its relationships), checked on the
/// way and capped: real ones are kilobytes.
fn read_part(archive: &mut Archive, part: &str) -> Result<Vec<u8>, String> {
    const MAX_LISTING: usize = 4 << 20;
    let mut entry = archive
        .by_name(part)
        .map_err(|error| format!("{part}: {error}"))?;
    let mut guard = XmlGuard::new();
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let read = entry
            .read(&mut chunk)
            .map_err(|error| format!("{part}: {error}"))?;
        if read == 0 {
            return Ok(bytes);
        }
        guard
            .feed(&chunk[..read])
            .map_err(|violation| format!("{part}: {violation}"))?;
        if bytes.len() + read > MAX_LISTING {
            return Err(format!("{part}: more than {} MB", MAX_LISTING >> 20));
        }
        bytes.extend_from_slice(&chunk[..read]);
    }
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

/// The archive's part names by their lower-case form: calamine finds
/// parts without regard to case, and so must the checks.
fn part_names(archive: &Archive) -> HashMap<String, String> {
    archive
        .file_names()
        .filter_map(Result::ok)
        .map(|name| (name.to_ascii_lowercase(), name.into_owned()))
        .collect()
}

/// The part `wanted` names, found as calamine finds it.
fn find_part(names: &HashMap<String, String>, wanted: &str) -> Result<String, String> {
    names
        .get(&wanted.to_ascii_lowercase())
        .cloned()
        .ok_or_else(|| format!("{wanted}: not in the workbook"))
}

/// The relationship targets of type `kind` (any, when empty) in a
/// relationships part, by ID.
fn relationships(rels: &[u8], kind: &str) -> Result<Vec<(String, String)>, String> {
    let mut reader = quick_xml::Reader::from_reader(rels);
    let mut buffer = Vec::new();
    let mut found = Vec::new();
    loop {
        match reader.read_event_into(&mut buffer) {
            Ok(Event::Start(event) | Event::Empty(event))
                if event.local_name().into_inner() == "Relationship" =>
            {
                let type_matches =
                    kind.is_empty() || attribute(&event, "Type").is_some_and(|t| t.ends_with(kind));
                if type_matches && let Some(target) = attribute(&event, "Target") {
                    found.push((attribute(&event, "Id").unwrap_or_default(), target));
                }
            }
            Ok(Event::Eof) => return Ok(found),
            Err(error) => return Err(error.to_string()),
            _ => {}
        }
        buffer.clear();
    }
}

/// Sheet names and the zip parts of their XML, in workbook order, found
/// as calamine finds them: the workbook from the package's relationships,
/// each sheet from the workbook's, parts without regard to case.
fn sheet_paths(archive: &mut Archive) -> Result<SheetParts, String> {
    let names = part_names(archive);
    let package = read_part(archive, &find_part(&names, "_rels/.rels")?)?;
    let document = relationships(&package, "/relationships/officeDocument")?
        .pop()
        .map_or_else(|| "xl/workbook.xml".to_owned(), |(_, target)| target);
    let document = document.strip_prefix('/').unwrap_or(&document).to_owned();
    let (folder, file) = match document.rfind('/') {
        Some(at) => document.split_at(at + 1),
        None => ("", document.as_str()),
    };
    let rels = read_part(
        archive,
        &find_part(&names, &format!("{folder}_rels/{file}.rels"))?,
    )?;
    let targets: HashMap<String, String> = relationships(&rels, "")?
        .into_iter()
        .map(|(id, target)| {
            let part = match target.strip_prefix('/') {
                Some(absolute) => absolute.to_owned(),
                None => format!("{folder}{target}"),
            };
            (id, part)
        })
        .collect();
    let workbook = read_part(archive, &find_part(&names, &document)?)?;
    let mut reader = quick_xml::Reader::from_reader(workbook.as_slice());
    let mut buffer = Vec::new();
    let mut sheets = Vec::new();
    loop {
        match reader.read_event_into(&mut buffer) {
            Ok(Event::Start(event) | Event::Empty(event))
                if event.local_name().into_inner() == "sheet" =>
            {
                if let (Some(name), Some(id)) = (attribute(&event, "name"), attribute(&event, "id"))
                    && let Some(part) = targets.get(&id)
                {
                    // A part the workbook names but lacks: calamine fails
                    // on it alike.
                    let part = find_part(&names, part).unwrap_or_else(|_| part.clone());
                    sheets.push((name, part));
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
/// chunks, checked by the guard and searched for `mergeCells`; only what
/// follows it is parsed.
fn merged_ranges(
    archive: &mut Archive,
    part: &str,
    done: &AtomicBool,
) -> Result<Vec<Dimensions>, ScanError> {
    let unreadable =
        |error: &dyn std::fmt::Display| ScanError::Unreadable(format!("{part}: {error}"));
    let mut entry = archive.by_name(part).map_err(|error| unreadable(&error))?;
    let mut guard = XmlGuard::new();
    let finder = memchr::memmem::Finder::new(b"mergeCells");
    let mut window = Vec::with_capacity(1 << 17);
    let mut chunk = vec![0u8; 1 << 16];
    let mut tail: Option<Vec<u8>> = None;
    loop {
        if done.load(Ordering::Relaxed) {
            return Err(ScanError::Unreadable("no longer needed".to_owned()));
        }
        let read = entry.read(&mut chunk).map_err(|error| unreadable(&error))?;
        if read == 0 {
            guard
                .finish()
                .map_err(|violation| ScanError::Refused(violation.to_string()))?;
            break;
        }
        guard
            .feed(&chunk[..read])
            .map_err(|violation| ScanError::Refused(violation.to_string()))?;
        match tail.as_mut() {
            Some(tail) if tail.len() > MAX_MERGES_XML => {
                return Err(ScanError::Refused(format!(
                    "the merged ranges take more than {} MB",
                    MAX_MERGES_XML >> 20
                )));
            }
            Some(tail) => tail.extend_from_slice(&chunk[..read]),
            None => {
                window.extend_from_slice(&chunk[..read]);
                // The element `<mergeCells` (or `<x:mergeCells`), not the
                // word in a cell's text; from its `<`, prefix included.
                let element = finder.find_iter(&window).find_map(|at| {
                    let start = window[..at].iter().rposition(|&b| b == b'<')?;
                    let between = &window[start + 1..at];
                    let is_element = match between.split_last() {
                        None => true,
                        Some((b':', prefix)) => prefix
                            .iter()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')),
                        Some(_) => false,
                    };
                    is_element.then_some(start)
                });
                match element {
                    Some(start) => tail = Some(window[start..].to_vec()),
                    None => {
                        // Keep enough to find the element across two chunks.
                        let keep = window.len().min(64);
                        window.drain(..window.len() - keep);
                    }
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
            Err(error) => return Err(unreadable(&error)),
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
        // The word in a cell's text is not the element.
        second
            .write_string(3, 1, "mergeCells <mergeCells> x:mergeCells")
            .unwrap();
        second.merge_range(0, 0, 0, 7, "title", &format).unwrap();
        second.merge_range(5, 3, 6, 4, "M1", &format).unwrap();
        workbook.save(&path).unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        let (gate, gate_rx) = std::sync::mpsc::sync_channel(1);
        scan(&path, gate, sender, Arc::new(AtomicBool::new(false)));
        assert_eq!(gate_rx.recv().unwrap(), Ok(()));
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
