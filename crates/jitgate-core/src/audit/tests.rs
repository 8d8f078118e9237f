//! The chain, its formats and the export verifier.

use super::*;
use std::io;

use chrono::TimeZone;

fn entry(n: i64) -> AuditEntry {
    let e = |t: &str, i: &str| EntityRef::new(t, i);
    AuditEntry {
        at: Utc.timestamp_opt(1_700_000_000 + n, 0).unwrap(),
        actor: e("User", "alice"),
        action: AuditAction::RequestCreated,
        request_id: RequestId(uuid::Uuid::from_u128(n as u128)),
        grant_id: None,
        principal: e("User", "alice"),
        scope: Scope::new(e("Action", "restart"), e("Db", "x")),
        text: Some(format!("reason {n}")),
        policy_ids: vec!["p1".into()],
        binding: None,
        replica: None,
        policy_version: None,
    }
}

fn chain(n: i64) -> Vec<AuditRecord> {
    let mut head = ChainHead::genesis();
    (0..n).map(|i| head.append(entry(i))).collect()
}

#[test]
fn an_intact_chain_verifies_to_its_head() {
    let c = chain(5);
    let head = verify(&c).unwrap();
    assert_eq!(head.seq, 5);
    assert_eq!(head.hash, c[4].hash);
    assert_eq!(verify(&[]).unwrap(), ChainHead::genesis());
}

#[test]
fn an_edited_record_is_found() {
    let mut c = chain(5);
    c[2].entry.text = Some("nothing to see".into());
    assert_eq!(verify(&c), Err(ChainError::Edited { seq: 3 }));
}

#[test]
fn a_removed_record_is_found() {
    let mut c = chain(5);
    c.remove(1);
    assert_eq!(verify(&c), Err(ChainError::Missing { expected: 2, found: 3 }));
    let mut tail = chain(5);
    tail.remove(0);
    assert_eq!(verify(&tail), Err(ChainError::Missing { expected: 1, found: 2 }));
}

#[test]
fn reordered_records_are_found() {
    let mut c = chain(5);
    c.swap(1, 2);
    assert_eq!(verify(&c), Err(ChainError::Missing { expected: 2, found: 3 }));
    let mut d = chain(5);
    d.swap(3, 1);
    assert!(verify(&d).is_err());
    let mut e = chain(3);
    e.push(e[1].clone());
    assert_eq!(verify(&e), Err(ChainError::Reordered { expected: 4, found: 2 }));
}

#[test]
fn a_rehashed_record_breaks_the_link() {
    let mut c = chain(4);
    c[1].entry.text = None;
    c[1].hash = c[1].content_hash().unwrap();
    assert_eq!(verify(&c), Err(ChainError::BrokenLink { seq: 3 }));
}

#[test]
fn jsonl_export_round_trips() {
    let c = chain(3);
    let mut buf = Vec::new();
    write_jsonl(&c, &mut buf).unwrap();
    let back: Vec<AuditRecord> = String::from_utf8(buf)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(back, c);
    assert!(verify(&back).is_ok());
}

fn export(c: &[AuditRecord]) -> Vec<u8> {
    let mut buf = Vec::new();
    write_jsonl(c, &mut buf).unwrap();
    buf
}

#[test]
fn an_export_verifies_streaming_and_the_first_bad_line_is_named() {
    let c = chain(4);
    let good = export(&c);
    assert_eq!(verify_jsonl(&good[..]).unwrap(), verify(&c).unwrap());
    assert_eq!(verify_jsonl(&b""[..]).unwrap(), ChainHead::genesis());

    let text = String::from_utf8(good).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[2] = lines[2].replace("reason 2", "reason X");
    let edited = lines.join("\n") + "\n";
    let e = verify_jsonl(edited.as_bytes()).unwrap_err();
    assert!(
        matches!(
            e,
            ExportError::Chain {
                line: 3,
                source: ChainError::Edited { seq: 3 }
            }
        ),
        "{e:?}"
    );

    let mut garbage = text.lines().map(str::to_owned).collect::<Vec<_>>();
    garbage[1] = "{\"seq\": 2, oops".into();
    let e = verify_jsonl((garbage.join("\n") + "\n").as_bytes()).unwrap_err();
    assert!(matches!(e, ExportError::NotARecord { line: 2, .. }), "{e:?}");
    assert_eq!(e.line(), 2);
    assert_eq!(e.to_string(), "line 2 is not an audit record");

    let e = verify_jsonl(&b"\n"[..]).unwrap_err();
    assert!(
        matches!(e, ExportError::NotARecord { line: 1, .. }),
        "a blank line is not a record"
    );
    let e = verify_jsonl(&[0xff, 0xfe, b'\n'][..]).unwrap_err();
    assert!(
        matches!(e, ExportError::NotARecord { line: 1, .. }),
        "nor bytes that are not UTF-8"
    );
    let long = vec![b' '; MAX_JSONL_LINE + 10];
    let e = verify_jsonl(&long[..]).unwrap_err();
    assert!(matches!(e, ExportError::LineTooLong { line: 1, .. }), "{e:?}");
}

#[test]
fn format_1_records_still_verify_and_a_chain_may_change_format() {
    // Records as jitgate wrote them before format 2, then new ones appended.
    let mut head = ChainHead::genesis();
    let mut c: Vec<AuditRecord> = (0..2)
        .map(|i| {
            let seq = head.seq + 1;
            let hash = record_hash(seq, &head.hash, &entry(i));
            let r = AuditRecord {
                v: 1,
                seq,
                prev_hash: std::mem::replace(&mut head.hash, hash.clone()),
                hash,
                entry: entry(i),
            };
            head.seq = seq;
            r
        })
        .collect();
    c.push(head.append(entry(2)));
    assert_eq!(c[2].v, RECORD_VERSION);
    assert_eq!(verify(&c).unwrap().seq, 3);
    // A format-1 line has no `v`: it reads as format 1.
    let line = serde_json::to_string(&c[0]).unwrap().replace("\"v\":1,", "");
    let back: AuditRecord = serde_json::from_str(&line).unwrap();
    assert_eq!(back, c[0]);
    assert!(verify_jsonl(export(&c).as_slice()).is_ok());

    let mut future = c.clone();
    future[2].v = 9;
    assert_eq!(verify(&future), Err(ChainError::UnknownFormat { seq: 3, v: 9 }));
}

#[test]
fn a_member_added_one_day_is_covered_by_the_hash_of_an_export() {
    // A record written by a later version, with a member this version does not know: the
    // hash covers the line as written.
    let mut head = ChainHead::genesis();
    let r = head.append(entry(0));
    let mut value = serde_json::to_value(&r).unwrap();
    value["entry"]["replica"] = serde_json::json!("b-2");
    let hash = line_hash(value.clone()).unwrap();
    value["hash"] = serde_json::json!(hash);
    let line = format!("{value}\n");
    assert_eq!(verify_jsonl(line.as_bytes()).unwrap().hash, hash);
    let edited = line.replace("b-2", "b-3");
    let e = verify_jsonl(edited.as_bytes()).unwrap_err();
    assert!(
        matches!(
            e,
            ExportError::Chain {
                line: 1,
                source: ChainError::Edited { seq: 1 }
            }
        ),
        "{e:?}"
    );
}

/// A reader whose disk is gone.
struct Unreadable;

impl io::Read for Unreadable {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::other("disk gone"))
    }
}

#[test]
fn a_read_error_names_its_line() {
    let e = verify_jsonl(io::BufReader::new(Unreadable)).unwrap_err();
    assert!(matches!(e, ExportError::Io { line: 1, .. }), "{e:?}");
    assert_eq!(e.line(), 1);
}
