//! `jitgate audit verify`: an audit export (JSON lines) checked record by record, and against a
//! signed checkpoint kept outside the store.

use std::io::BufReader;
use std::path::Path;

use jitgate::audit::{verify_jsonl, verify_jsonl_against, Checkpoint};
use serde_json::json;

use crate::{Failure, Format};

/// The checkpoint in `path`: one JSON object, or the last line of a JSON-lines file of them
/// (as `JsonLinesCheckpoints` writes).
fn checkpoint(path: &Path) -> Result<Checkpoint, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| format!("{} holds no checkpoint", path.display()))?;
    serde_json::from_str(last).map_err(|e| format!("{}: not a checkpoint: {e}", path.display()))
}

pub fn verify(export: &Path, against: Option<(&Path, &str)>, format: Format) -> Result<(), Failure> {
    let file = std::fs::File::open(export).map_err(|e| format!("cannot read {}: {e}", export.display()))?;
    let input = BufReader::new(file);
    let verified = match against {
        Some((path, key)) => verify_jsonl_against(input, &checkpoint(path)?, key),
        None => verify_jsonl(input),
    };
    match (verified, format) {
        (Ok(head), Format::Json) => println!("{}", json!({ "ok": true, "records": head.seq, "head": head.hash })),
        (Ok(head), _) => println!(
            "ok: {} records, chain intact{}; head {}",
            head.seq,
            if against.is_some() {
                " and reaching the checkpoint"
            } else {
                ""
            },
            head.hash
        ),
        (Err(e), Format::Json) => {
            println!("{}", json!({ "ok": false, "error": e.to_string() }));
            return Err(Failure::Found);
        }
        (Err(e), _) => {
            eprintln!("{}: {e}", export.display());
            return Err(Failure::Found);
        }
    }
    Ok(())
}
