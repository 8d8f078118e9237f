//! RFC 8785 (JSON Canonicalization Scheme) for jitgate's data: written by hand because the
//! crate tried first (`serde_json_canonicalizer`) re-parses every member name and boxes every
//! write, which made verifying a 1,000,000-record export take 22 s (the target is 10 s).
//!
//! Canonical JSON here: no whitespace; object members sorted by their names' UTF-16 code units;
//! strings as `serde_json` writes them (which is what RFC 8785 asks: `"` and `\` escaped, control
//! characters as `\b \t \n \f \r` or `\u00xx`, everything else literal); integers in decimal.
//! jitgate's records hold no fractional numbers; a value with one is refused (`None`), since
//! RFC 8785 formats those as ECMAScript does.

use std::io::{self, Write};

use serde_json::Value;

/// Writes `value` canonically to `out`; `Ok(false)` if it holds a number that is not an integer
/// (nothing useful was written then).
pub(crate) fn write(value: &Value, out: &mut impl Write) -> io::Result<bool> {
    match value {
        Value::Null | Value::Bool(_) | Value::String(_) => {
            serde_json::to_writer(&mut *out, value).map_err(io::Error::other)?
        }
        Value::Number(n) => {
            if !(n.is_i64() || n.is_u64()) {
                return Ok(false);
            }
            serde_json::to_writer(&mut *out, n).map_err(io::Error::other)?;
        }
        Value::Array(items) => {
            out.write_all(b"[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.write_all(b",")?;
                }
                if !write(item, out)? {
                    return Ok(false);
                }
            }
            out.write_all(b"]")?;
        }
        Value::Object(members) => {
            let mut names: Vec<&String> = members.keys().collect();
            // Sorted here whatever the map's own order (serde_json's `preserve_order` keeps
            // insertion order). RFC 8785 sorts by UTF-16 code units, which differs from byte
            // order only between U+E000..U+FFFF and U+10000 and above.
            if names.iter().all(|n| n.is_ascii()) {
                names.sort_unstable();
            } else {
                names.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            }
            out.write_all(b"{")?;
            for (i, name) in names.into_iter().enumerate() {
                if i > 0 {
                    out.write_all(b",")?;
                }
                serde_json::to_writer(&mut *out, name).map_err(io::Error::other)?;
                out.write_all(b":")?;
                if !write(&members[name], out)? {
                    return Ok(false);
                }
            }
            out.write_all(b"}")?;
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(v: &Value) -> Option<String> {
        let mut out = Vec::new();
        write(v, &mut out).unwrap().then(|| String::from_utf8(out).unwrap())
    }

    #[test]
    fn members_are_sorted_strings_escaped_as_rfc_8785_asks() {
        let v = serde_json::json!({"b": 1, "a": [true, null, "x\"\\\n\u{1}é✓😀"], "c": {"z": -5, "y": 18446744073709551615u64}});
        assert_eq!(
            canonical(&v).unwrap(),
            "{\"a\":[true,null,\"x\\\"\\\\\\n\\u0001é✓😀\"],\"b\":1,\"c\":{\"y\":18446744073709551615,\"z\":-5}}"
        );
        // RFC 8785 §3.2.3: names sort by UTF-16 code units, so U+1F600 (a surrogate pair,
        // D83D…) sorts before U+FB01 although its code point is larger.
        let v = serde_json::json!({"\u{fb01}": 1, "\u{1f600}": 2});
        assert_eq!(canonical(&v).unwrap(), "{\"😀\":2,\"ﬁ\":1}");
        assert_eq!(
            canonical(&serde_json::json!({"a": 1.5})),
            None,
            "fractions are not jitgate's"
        );
    }
}
