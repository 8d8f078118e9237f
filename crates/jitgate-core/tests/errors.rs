//! Every error keeps its cause typed and reachable through `source()`, and no message repeats
//! the cause it wraps (print the whole chain with `ErrorChain`).

use std::io;

use jitgate_core::*;
use jitgate_testkit::assert_no_repeated_cause;

fn io_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "connection reset by peer")
}

#[test]
fn no_core_error_repeats_its_cause() {
    let backend = StoreError::Backend(Box::new(io_error()));
    let errors: Vec<Box<dyn std::error::Error>> = vec![
        Box::new(StoreError::Backend(Box::new(io_error()))),
        Box::new(Error::Store(StoreError::Backend(Box::new(io_error())))),
        Box::new(Error::Policy(PolicyError::with_source(
            "entity provider unreachable",
            io_error(),
        ))),
        Box::new(AuditError::Io(io_error())),
        Box::new(AuditError::Store(backend)),
        Box::new(Error::Unsupported {
            verb: "sweep",
            capability: Capability::DueWork,
        }),
    ];
    for e in &errors {
        assert_no_repeated_cause(e.as_ref());
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn the_cause_stays_typed_and_the_chain_prints_once() {
    let e = Error::Store(StoreError::Backend(Box::new(io_error())));
    let source = std::error::Error::source(&e).expect("a store error has a cause");
    let io = source
        .downcast_ref::<io::Error>()
        .expect("the backend's io::Error, typed");
    assert_eq!(io.kind(), io::ErrorKind::ConnectionReset);
    let line = ErrorChain(&e).to_string();
    assert_eq!(line, "storage backend failed: connection reset by peer");
    assert_eq!(line.matches("connection reset").count(), 1);
}

#[derive(Debug, thiserror::Error)]
#[error("wrapper failed: {0}")]
struct Repeats(#[source] io::Error);

#[test]
#[should_panic(expected = "repeats its cause")]
fn the_check_catches_a_message_that_repeats_its_cause() {
    assert_no_repeated_cause(&Repeats(io_error()));
}
