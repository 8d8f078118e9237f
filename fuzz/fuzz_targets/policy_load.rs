//! Property: loading any text as a policy set (with the example schema) returns a policy or
//! located errors, and never panics, overflows the stack or aborts — whatever the nesting,
//! annotations (durations, numbers, misspellings) or size.

#![no_main]

use jitgate_cedar::CedarPolicy;
use libfuzzer_sys::fuzz_target;

const SCHEMA: &str = include_str!("../../examples/policies/app.cedarschema");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let built = rt.block_on(
        CedarPolicy::builder()
            .schema("app.cedarschema", SCHEMA)
            .policies("fuzz.cedar", text)
            .entities_never_expire()
            .build(),
    );
    if let Err(errors) = built {
        // Every error renders (the messages and their locations are part of the contract).
        let _ = errors.to_string();
    }
});
