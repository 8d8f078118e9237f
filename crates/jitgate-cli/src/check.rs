//! `jitgate check`: the schema, the policies and the entities validated together.

use jitgate::cedar::{CedarError, CedarErrors, CedarPolicy};
use jitgate::Policy as _;
use serde_json::json;

use crate::inputs::PolicyArgs;
use crate::{Failure, Format};

/// Builds the policy set, or prints every error (in `format`) and fails.
pub async fn load(policy: &PolicyArgs, format: Format) -> Result<CedarPolicy, Failure> {
    built(policy.recipe()?, format).await
}

async fn built(recipe: jitgate::cedar::CedarPolicyBuilder, format: Format) -> Result<CedarPolicy, Failure> {
    match recipe.build().await {
        Ok(built) => Ok(built),
        Err(errors) => {
            print_errors(&errors, format);
            Err(Failure::Found)
        }
    }
}

pub async fn run(policy: &PolicyArgs, format: Format) -> Result<(), Failure> {
    let built = load(policy, format).await?;
    let version = built.version().map(|v| v.to_string()).unwrap_or_default();
    let policies = built.policies().count();
    match format {
        Format::Json => println!(
            "{}",
            json!({ "ok": true, "policies": policies, "version": version, "errors": [] })
        ),
        Format::Github => println!("::notice title=jitgate check::{policies} policies valid (policy set {version})"),
        Format::Human => println!("ok: {policies} policies, schema and entities valid (policy set {version})"),
    }
    Ok(())
}

fn print_errors(errors: &CedarErrors, format: Format) {
    match format {
        Format::Json => {
            let list: Vec<_> = errors.errors().iter().map(error_json).collect();
            println!("{}", json!({ "ok": false, "errors": list }));
        }
        Format::Github => {
            for e in errors.errors() {
                println!("{}", github_annotation(e));
            }
        }
        Format::Human => {
            let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor());
            for e in errors.errors() {
                let mut out = String::new();
                if handler.render_report(&mut out, e).is_err() {
                    out = e.to_string();
                }
                eprintln!("{out}");
            }
            eprintln!(
                "{} error{} in the schema, policies and entities",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
        }
    }
}

fn error_json(e: &CedarError) -> serde_json::Value {
    let help = miette::Diagnostic::help(e).map(|h| h.to_string());
    match e.location() {
        Some(l) => json!({
            "code": code(e),
            "message": e.to_string(),
            "file": l.source_name,
            "line": l.line,
            "column": l.column,
            "snippet": l.snippet,
            "help": help,
        }),
        None => json!({ "code": code(e), "message": e.to_string(), "help": help }),
    }
}

/// A GitHub Actions `::error` workflow command (message and properties escaped as its
/// documentation says).
fn github_annotation(e: &CedarError) -> String {
    let escape_data = |s: &str| s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
    let escape_property = |s: &str| escape_data(s).replace(':', "%3A").replace(',', "%2C");
    let mut message = e.to_string();
    if let Some(help) = miette::Diagnostic::help(e) {
        message.push_str(&format!("\nhelp: {help}"));
    }
    let title = escape_property(&code(e));
    match e.location() {
        Some(l) => format!(
            "::error file={},line={},col={},title={title}::{}",
            escape_property(&l.source_name),
            l.line,
            l.column,
            escape_data(&message)
        ),
        None => format!("::error title={title}::{}", escape_data(&message)),
    }
}

/// The error's code (`jitgate::cedar::parse`, ...).
fn code(e: &CedarError) -> String {
    miette::Diagnostic::code(e)
        .map(|c| c.to_string())
        .unwrap_or_else(|| "error".into())
}
