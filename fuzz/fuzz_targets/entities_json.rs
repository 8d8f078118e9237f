//! Property: any text given as Cedar entities JSON parses or returns an error; no hierarchy
//! (deep, cyclic, huge) panics or overflows the stack.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = jitgate_cedar::entities_from_json(text);
});
