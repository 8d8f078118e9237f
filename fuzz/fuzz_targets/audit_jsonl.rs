//! Property: the streaming verifier of an audit JSON-lines export answers a head or names a
//! line for any bytes, and never panics.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match jitgate_core::audit::verify_jsonl(data) {
        Ok(head) => assert!(head.seq as usize <= data.len()),
        Err(e) => assert!(e.line() >= 1),
    }
});
