//! Choosing and applying a CSV file's text encoding. Finance exports come as
//! UTF-8 (with or without a BOM) or, from Excel on Chinese Windows, as GBK,
//! which GB18030 decodes. One streaming pass over the bytes computes the
//! input's SHA-256 and the evidence for `auto`; decoding then streams too.
//! A file that is mostly UTF-8 with a few bad bytes is refused, naming the
//! first bad line, rather than decoded as GB18030 into garbled names.

use std::io::{self, Read};

use encoding_rs::{DecoderResult, GB18030};
use sha2::{Digest, Sha256};

use super::EncodingChoice;

pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
const GB18030_BOM: &[u8] = b"\x84\x31\x95\x33";

/// How a file's bytes read as UTF-8.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Utf8Scan {
    /// Non-ASCII characters that are well-formed UTF-8 (counted only when
    /// the file has a bad sequence: nothing else needs them).
    pub utf8_multibyte_chars: u64,
    /// Byte sequences that are not UTF-8.
    pub utf8_invalid_sequences: u64,
    /// Line (1-based) of the first byte that is not UTF-8.
    pub first_invalid_line: Option<u64>,
}

/// Weighs a file's bytes as UTF-8 and hashes them (SHA-256) in the same
/// read. A valid file is read once; only a file with a bad sequence is read
/// again to count the evidence (and hashed in that second read).
pub fn scan_and_hash(
    mut open: impl FnMut() -> io::Result<Box<dyn Read>>,
) -> io::Result<(Utf8Scan, [u8; 32])> {
    let mut hasher = Sha256::new();
    if utf8_pass(open()?, false, &mut hasher)?
        .first_invalid_line
        .is_none()
    {
        return Ok((Utf8Scan::default(), hasher.finalize().into()));
    }
    let mut hasher = Sha256::new();
    let scan = utf8_pass(open()?, true, &mut hasher)?;
    Ok((scan, hasher.finalize().into()))
}

#[cfg(test)]
fn scan_utf8(open: impl FnMut() -> io::Result<Box<dyn Read>>) -> io::Result<Utf8Scan> {
    scan_and_hash(open).map(|(scan, _)| scan)
}

/// SHA-256 of everything `reader` yields.
pub fn sha256(mut reader: impl Read) -> io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(hasher.finalize().into()),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// One pass of UTF-8 validation, hashing what it reads; with `count`, the
/// full evidence, else it stops at the first bad sequence.
fn utf8_pass(mut reader: impl Read, count: bool, hasher: &mut Sha256) -> io::Result<Utf8Scan> {
    let mut buf = vec![0u8; 1 << 20];
    let mut carried = 0;
    let mut scan = Utf8Scan::default();
    let mut newlines_before_invalid = 0u64;
    loop {
        let read = match reader.read(&mut buf[carried..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let at_end = read == 0;
        hasher.update(&buf[carried..carried + read]);
        let data = &buf[..carried + read];
        let mut pos = 0;
        while pos < data.len() {
            match simdutf8::compat::from_utf8(&data[pos..]) {
                Ok(_) => {
                    if count {
                        count_valid(&data[pos..], &mut scan, &mut newlines_before_invalid);
                    }
                    pos = data.len();
                }
                Err(error) => {
                    let valid = error.valid_up_to();
                    if count {
                        count_valid(
                            &data[pos..pos + valid],
                            &mut scan,
                            &mut newlines_before_invalid,
                        );
                    }
                    match error.error_len() {
                        Some(bad) => pos += valid + bad,
                        // A sequence cut by the buffer's end: carry it over.
                        None if !at_end => {
                            pos += valid;
                            break;
                        }
                        None => pos = data.len(),
                    }
                    scan.utf8_invalid_sequences += 1;
                    scan.first_invalid_line
                        .get_or_insert(newlines_before_invalid + 1);
                    if !count {
                        return Ok(scan);
                    }
                }
            }
        }
        carried = data.len() - pos;
        buf.copy_within(pos..pos + carried, 0);
        if at_end {
            return Ok(scan);
        }
    }
}

/// Weighs a run of valid UTF-8: its non-ASCII characters, and its lines
/// while no bad byte has been seen.
fn count_valid(bytes: &[u8], scan: &mut Utf8Scan, newlines_before_invalid: &mut u64) {
    scan.utf8_multibyte_chars += bytes.iter().filter(|&&b| b >= 0xC0).count() as u64;
    if scan.first_invalid_line.is_none() {
        *newlines_before_invalid += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    }
}

/// The encoding a CSV file is read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    Utf8,
    Gb18030,
}

impl TextEncoding {
    pub fn name(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "utf-8",
            TextEncoding::Gb18030 => "gb18030",
        }
    }
}

/// Why no encoding could be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodingRefusal {
    Utf16,
    MostlyUtf8 { line: u64, bad_sequences: u64 },
}

/// The encoding and the number of leading BOM bytes to skip.
pub fn choose_encoding(
    choice: EncodingChoice,
    head: &[u8],
    scan: &Utf8Scan,
) -> Result<(TextEncoding, usize), EncodingRefusal> {
    if head.starts_with(UTF8_BOM) {
        return Ok((TextEncoding::Utf8, UTF8_BOM.len()));
    }
    if head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF") {
        return Err(EncodingRefusal::Utf16);
    }
    if head.starts_with(GB18030_BOM) {
        return Ok((TextEncoding::Gb18030, GB18030_BOM.len()));
    }
    match choice {
        EncodingChoice::Utf8 => Ok((TextEncoding::Utf8, 0)),
        EncodingChoice::Gb18030 => Ok((TextEncoding::Gb18030, 0)),
        EncodingChoice::Auto => match scan.first_invalid_line {
            None => Ok((TextEncoding::Utf8, 0)),
            // GBK text only now and then forms a valid UTF-8 sequence by
            // chance; a file where valid sequences outnumber the bad ones is
            // UTF-8 that was damaged.
            Some(line) if scan.utf8_multibyte_chars > scan.utf8_invalid_sequences => {
                Err(EncodingRefusal::MostlyUtf8 {
                    line,
                    bad_sequences: scan.utf8_invalid_sequences,
                })
            }
            Some(_) => Ok((TextEncoding::Gb18030, 0)),
        },
    }
}

/// Streams GB18030 bytes out as UTF-8, failing on the first malformed
/// sequence with the line it is on (never substituting U+FFFD).
pub struct Gb18030Reader<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    input: Vec<u8>,
    input_start: usize,
    input_end: usize,
    input_done: bool,
    output: Vec<u8>,
    output_start: usize,
    output_end: usize,
    finished: bool,
    newlines_out: u64,
}

impl<R: Read> Gb18030Reader<R> {
    pub fn new(inner: R) -> Self {
        Gb18030Reader {
            inner,
            decoder: GB18030.new_decoder_without_bom_handling(),
            input: vec![0; 64 * 1024],
            input_start: 0,
            input_end: 0,
            input_done: false,
            output: vec![0; 256 * 1024],
            output_start: 0,
            output_end: 0,
            finished: false,
            newlines_out: 0,
        }
    }

    /// Decodes more output; false at the end of the stream.
    fn refill(&mut self) -> io::Result<bool> {
        loop {
            if self.finished {
                return Ok(false);
            }
            if self.input_start == self.input_end && !self.input_done {
                self.input_start = 0;
                self.input_end = loop {
                    match self.inner.read(&mut self.input) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                };
                self.input_done = self.input_end == 0;
            }
            let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
                &self.input[self.input_start..self.input_end],
                &mut self.output,
                self.input_done,
            );
            self.input_start += read;
            let produced = &self.output[..written];
            let line_of_error =
                self.newlines_out + produced.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
            self.newlines_out = line_of_error - 1;
            self.output_start = 0;
            self.output_end = written;
            match result {
                DecoderResult::Malformed(_, _) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "line {line_of_error} has bytes that are not valid GB18030 (GBK) text; \
                             check the file's encoding, or set [input] encoding = \"utf-8\" if it \
                             is UTF-8"
                        ),
                    ));
                }
                DecoderResult::InputEmpty if self.input_done => self.finished = true,
                DecoderResult::InputEmpty | DecoderResult::OutputFull => {}
            }
            if written > 0 {
                return Ok(true);
            }
        }
    }
}

impl<R: Read> Read for Gb18030Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.output_start == self.output_end && !self.refill()? {
            return Ok(0);
        }
        let n = buf.len().min(self.output_end - self.output_start);
        buf[..n].copy_from_slice(&self.output[self.output_start..self.output_start + n]);
        self.output_start += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gbk(text: &str) -> Vec<u8> {
        GB18030.encode(text).0.into_owned()
    }

    fn scan(bytes: &[u8]) -> Utf8Scan {
        let owned = bytes.to_vec();
        scan_utf8(|| Ok(Box::new(io::Cursor::new(owned.clone())))).unwrap()
    }

    fn decide(bytes: &[u8]) -> Result<(TextEncoding, usize), EncodingRefusal> {
        choose_encoding(EncodingChoice::Auto, bytes, &scan(bytes))
    }

    #[test]
    fn sha256_hashes_the_whole_input() {
        assert_eq!(
            sha256(&b"abc"[..]).unwrap()[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256 of \"abc\" starts ba7816bf"
        );
    }

    #[test]
    fn auto_detection_picks_utf8_gb18030_or_refuses() {
        assert_eq!(
            decide("a,b\n张三,1\n".as_bytes()),
            Ok((TextEncoding::Utf8, 0))
        );
        assert_eq!(decide(b"\xEF\xBB\xBFa\n"), Ok((TextEncoding::Utf8, 3)));
        let chinese = gbk("支付单号,金额\n张三,100\n李四,200\n王五,300\n");
        assert_eq!(decide(&chinese), Ok((TextEncoding::Gb18030, 0)));
        // UTF-8 with one damaged byte on line 3.
        let mut damaged = "h\n张三李四王五,1\n".as_bytes().to_vec();
        damaged.extend_from_slice(b"\xFF,2\n");
        assert_eq!(
            decide(&damaged),
            Err(EncodingRefusal::MostlyUtf8 {
                line: 3,
                bad_sequences: 1
            })
        );
        assert_eq!(decide(b"\xFF\xFEa\x00"), Err(EncodingRefusal::Utf16));
        // A BOM wins over a forced choice.
        assert_eq!(
            choose_encoding(EncodingChoice::Gb18030, b"\xEF\xBB\xBFx", &scan(b"x")),
            Ok((TextEncoding::Utf8, 3))
        );
    }

    #[test]
    fn the_scan_hashes_every_byte_once_in_one_read_or_two() {
        // Characters straddle the 1 MiB buffer's end (carried over, hashed
        // once); with a bad byte the file is read and hashed again.
        let valid = "中".repeat(400_000).into_bytes();
        let bad = [valid.as_slice(), b"\xFF tail"].concat();
        for bytes in [valid, bad, Vec::new()] {
            let owned = bytes.clone();
            let (_, digest) =
                scan_and_hash(|| Ok(Box::new(io::Cursor::new(owned.clone())))).unwrap();
            assert_eq!(digest, sha256(&bytes[..]).unwrap());
        }
    }

    #[test]
    fn scan_finds_sequences_split_across_buffers() {
        // 3-byte characters straddle the 1 MiB buffer boundary somewhere.
        let mut text = "中".repeat(400_000).into_bytes();
        assert_eq!(scan(&text), Utf8Scan::default());
        text.push(0xFF);
        let counted = scan(&text);
        assert_eq!(counted.utf8_invalid_sequences, 1);
        assert_eq!(counted.utf8_multibyte_chars, 400_000);
    }

    #[test]
    fn gb18030_reader_decodes_and_names_the_bad_line() {
        let text = "支付单号,金额\n张三,100\n".repeat(5000);
        let mut decoded = String::new();
        Gb18030Reader::new(&gbk(&text)[..])
            .read_to_string(&mut decoded)
            .unwrap();
        assert_eq!(decoded, text);

        let mut bad = gbk("a\nb\n");
        bad.extend_from_slice(b"\x81\x20\n");
        let error = Gb18030Reader::new(&bad[..])
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(error.to_string().contains("line 3"), "{error}");
    }
}
