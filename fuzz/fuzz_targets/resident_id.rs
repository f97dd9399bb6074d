//! The GB 11643 resident ID check on any text, and on the ID completed
//! from its first 17 digits with every possible last character.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    declare_batch::fuzzing::check_resident_id_text(text);
});
