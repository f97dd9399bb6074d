//! Arbitrary bytes as a CSV export, through decoding, column mapping and
//! every row rule (see `csv_file_from_fuzz_input` for the first byte).

#![no_main]

use declare_batch::fuzzing::{check_input_bytes, csv_file_from_fuzz_input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(file) = csv_file_from_fuzz_input(data) {
        let _ = check_input_bytes(&std::env::temp_dir(), "csv", &file);
    }
});
