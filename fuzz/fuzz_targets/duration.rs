//! Property: the annotation duration parser answers a positive duration or a message for any
//! text, and never panics (no overflow in its arithmetic).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(d) = jitgate_cedar::duration::parse_iso8601(text) {
        assert!(d > chrono::Duration::zero(), "{text} parsed to {d}");
    }
});
