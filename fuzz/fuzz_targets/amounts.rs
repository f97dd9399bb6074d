//! Amount parsing (fen and yuan) on any text, against a digit-by-digit
//! oracle.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    declare_batch::fuzzing::check_amount_text(text);
});
