//! Arbitrary bytes as an .xlsx workbook, through calamine's reader, the
//! cell conversions and every row rule.

#![no_main]

use declare_batch::fuzzing::check_input_bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = check_input_bytes(&std::env::temp_dir(), "xlsx", data);
});
