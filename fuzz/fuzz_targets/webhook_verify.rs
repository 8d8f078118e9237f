//! Property: `jitgate_webhook::verify` returns an error or `Ok` for any headers, body, clock
//! and tolerance, never panics; and it accepts what `sign` produced (Standard Webhooks form).

#![no_main]

use arbitrary::Arbitrary;
use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    secret: &'a [u8],
    id: &'a str,
    timestamp: &'a str,
    signature: &'a str,
    body: &'a [u8],
    now: i64,
    tolerance_seconds: i64,
    sign_it: bool,
}

fuzz_target!(|input: Input<'_>| {
    let Some(now) = Utc.timestamp_opt(input.now, 0).single() else { return };
    let Some(tolerance) = chrono::Duration::try_seconds(input.tolerance_seconds) else { return };
    let _ = jitgate_webhook::verify(
        input.secret,
        input.id,
        input.timestamp,
        input.signature,
        input.body,
        now,
        tolerance,
    );
    let _ = jitgate_webhook::key_from_secret(input.signature);
    if input.sign_it {
        let signature = jitgate_webhook::sign(input.secret, input.id, input.now, input.body);
        let ok = jitgate_webhook::verify(
            input.secret,
            input.id,
            &input.now.to_string(),
            &signature,
            input.body,
            now,
            chrono::Duration::zero(),
        );
        assert!(ok.is_ok(), "a fresh signature must verify: {ok:?}");
    }
});
