//! `jitgate`: Cedar policies for jitgate checked, tested and explained from the command line.
//!
//! Exit codes: 0 — everything passed; 1 — the check found errors, or a test case failed;
//! 2 — the command could not run (bad arguments, a file that cannot be read).

mod audit;
mod cases;
mod chart;
mod check;
mod explain;
mod inputs;
mod ops;
mod parse;
mod simulate;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Check, test and explain Cedar policies for jitgate.
#[derive(Parser, Debug)]
#[command(name = "jitgate", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate the schema, the policies (with jitgate's annotations) and the entities together.
    ///
    /// Every error is reported at once, with the offending source lines.
    #[command(
        after_help = "Examples:\n  jitgate check examples/policies\n  jitgate check --config jitgate.toml --format github\n  jitgate check --schema app.cedarschema --policies policies/ --entities entities.json\n\nExit codes: 0 valid, 1 errors found, 2 could not run."
    )]
    Check {
        #[command(flatten)]
        policy: inputs::PolicyArgs,
        /// `human` (default), `json`, or `github` (annotations a CI system shows on the change).
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Run policy test cases: principal, action, resource, context → the expected answer.
    #[command(
        after_help = "Examples:\n  jitgate test examples/policies\n  jitgate test examples/policies --cases examples/policies/access.test.toml --format json\n\nWithout --cases, every *.test.toml in the policy directory runs.\nExit codes: 0 every case passed, 1 a case failed (or the policies do not load), 2 could not run."
    )]
    Test {
        #[command(flatten)]
        policy: inputs::PolicyArgs,
        /// A TOML file of `[[case]]`s (repeatable).
        #[arg(long)]
        cases: Vec<std::path::PathBuf>,
        /// `human` (default) or `json`.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Explain one request: which policies matched, the approval flow, why it is not allowed.
    #[command(
        after_help = "Examples:\n  jitgate explain examples/policies --principal 'User::\"sam\"' --action 'Action::\"db_restart\"' --resource 'Database::\"orders-prod\"'\n  jitgate explain examples/policies --principal 'User::\"sam\"' --action 'Action::\"db_restart\"' --resource 'Database::\"orders-prod\"' --context '{\"ticket\": \"INC-1\"}' --format json\n\nExit codes: 0 explained, 1 the policies do not load, 2 could not run."
    )]
    Explain {
        #[command(flatten)]
        policy: inputs::PolicyArgs,
        /// Who asks, as a Cedar entity reference: `User::"sam"`.
        #[arg(long)]
        principal: String,
        /// The action: `Action::"db_restart"`.
        #[arg(long)]
        action: String,
        /// The resource: `Database::"orders-prod"`.
        #[arg(long)]
        resource: String,
        /// The context, as a JSON object: `{"ticket": "INC-1"}`.
        #[arg(long)]
        context: Option<String>,
        /// `human` (default) or `json`.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// The audit trail: verify an export, or export a store's.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Apply jitgate's migrations to the configuration's PostgreSQL store, or print their SQL.
    #[command(
        after_help = "Examples:\n  jitgate migrate --config jitgate.toml\n  jitgate migrate --config jitgate.toml --print > jitgate.sql   # for a database administrator\n\nExit codes: 0 migrated (or printed), 2 could not run."
    )]
    Migrate {
        /// The deployment's configuration file (its `[store]`).
        #[arg(long)]
        config: std::path::PathBuf,
        /// Print the SQL (with the rows recording it) instead of applying it.
        #[arg(long)]
        print: bool,
    },
    /// List pending requests (all, or those a reviewer may review).
    #[command(
        after_help = "Examples:\n  jitgate requests --config jitgate.toml\n  jitgate requests --config jitgate.toml --reviewer 'User::\"lee\"' --format json"
    )]
    Requests {
        #[arg(long)]
        config: std::path::PathBuf,
        /// Only the requests this reviewer may review.
        #[arg(long)]
        reviewer: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// List a principal's grants in force or scheduled.
    #[command(after_help = "Example:\n  jitgate grants --config jitgate.toml --principal 'User::\"sam\"'")]
    Grants {
        #[arg(long)]
        config: std::path::PathBuf,
        #[arg(long)]
        principal: String,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Approve a request as a named reviewer (checked by the policy, audited).
    #[command(
        after_help = "Example:\n  jitgate approve req_… --config jitgate.toml --as 'User::\"lee\"' --comment 'go ahead'\n\nExit codes: 0 done, 1 refused by the rules (and audited), 2 could not run."
    )]
    Approve(ReviewArgs),
    /// Deny a request as a named reviewer (checked by the policy, audited).
    #[command(
        after_help = "Example:\n  jitgate deny req_… --config jitgate.toml --as 'User::\"lee\"' --comment 'use staging'\n\nExit codes: 0 done, 1 refused by the rules (and audited), 2 could not run."
    )]
    Deny(ReviewArgs),
    /// Revoke one grant.
    #[command(
        after_help = "Example:\n  jitgate revoke grt_… --config jitgate.toml --as 'User::\"lee\"' --reason 'incident over'\n\nExit codes: 0 revoked, 1 refused by the rules (and audited), 2 could not run."
    )]
    Revoke {
        /// The grant's id (`grt_…`).
        id: String,
        #[command(flatten)]
        act: ActArgs,
    },
    /// Off-board a principal: revoke every grant and close every pending request.
    #[command(
        after_help = "Example:\n  jitgate offboard 'User::\"sam\"' --config jitgate.toml --as 'User::\"lee\"' --reason 'left the company'\n\nExit codes: 0 done, 1 refused by the rules (and audited), 2 could not run."
    )]
    Offboard {
        /// The principal, as a Cedar entity reference.
        principal: String,
        #[command(flatten)]
        act: ActArgs,
    },
    /// Replay a log of actions against the policies: what would be standing, auto-approved,
    /// need approval or be denied, per action and per team; the approval load per reviewer
    /// group per day; rarely used standing permissions; with --baseline, what changes.
    #[command(
        after_help = "Examples:\n  jitgate simulate examples/policies --log actions.jsonl\n  jitgate simulate policies-new/ --baseline policies-old/ --log actions.csv --chart load.svg\n\nA JSON-lines row: {\"principal\": \"User::\\\"sam\\\"\", \"action\": \"Action::\\\"db_restart\\\"\", \"resource\": \"Database::\\\"orders-prod\\\"\", \"context\": {}, \"time\": \"2026-11-02T09:00:00Z\"}\nA CSV log has a header naming principal, action, resource, and optionally time and context, in any order.\nExit codes: 0 simulated, 1 the policies do not load, 2 could not run."
    )]
    Simulate {
        #[command(flatten)]
        policy: inputs::PolicyArgs,
        #[command(flatten)]
        args: simulate::SimulateArgs,
        /// `human` (default) or `json`.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Verify an audit export (JSON lines): every record's hash and link, and with --checkpoint
    /// and --key, that it reaches a checkpoint signed outside the store (a cut tail or a
    /// rewritten chain is found).
    #[command(
        after_help = "Examples:\n  jitgate audit verify audit.jsonl\n  jitgate audit verify audit.jsonl --checkpoint checkpoints.jsonl --key 3b6a27bc…\n\nExit codes: 0 intact, 1 the first bad record is named, 2 could not run."
    )]
    Verify {
        /// The export, as `Gate::export_audit` writes it.
        export: std::path::PathBuf,
        /// A checkpoint (JSON), or a JSON-lines file of them (the last is used).
        #[arg(long, requires = "key")]
        checkpoint: Option<std::path::PathBuf>,
        /// The checkpoint signer's public key (hex).
        #[arg(long, requires = "checkpoint")]
        key: Option<String>,
        /// `human` (default) or `json`.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Export the audit trail of the configuration's store as JSON lines.
    #[command(
        after_help = "Example:\n  jitgate audit export --config jitgate.toml --out audit.jsonl && jitgate audit verify audit.jsonl"
    )]
    Export {
        #[arg(long)]
        config: std::path::PathBuf,
        /// The file to write (default: standard output).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

/// What `approve` and `deny` take.
#[derive(clap::Args, Debug)]
struct ReviewArgs {
    /// The request's id (`req_…`).
    id: String,
    /// The deployment's configuration file.
    #[arg(long)]
    config: std::path::PathBuf,
    /// The reviewer, as a Cedar entity reference.
    #[arg(long = "as")]
    reviewer: String,
    /// The review's comment (in the audit trail).
    #[arg(long)]
    comment: Option<String>,
    /// `human` (default) or `json`.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

/// What `revoke` and `offboard` take besides their subject.
#[derive(clap::Args, Debug)]
struct ActArgs {
    /// The deployment's configuration file.
    #[arg(long)]
    config: std::path::PathBuf,
    /// Who acts, as a Cedar entity reference (checked by the policy, audited).
    #[arg(long = "as")]
    actor: String,
    /// Why (in the audit trail).
    #[arg(long)]
    reason: Option<String>,
    /// `human` (default) or `json`.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// For people.
    Human,
    /// One JSON document on standard output.
    Json,
    /// GitHub Actions workflow commands (`::error file=…,line=…::…`); `check` only.
    Github,
}

/// Why a command stopped.
#[derive(Debug)]
enum Failure {
    /// It ran and found problems (exit 1); what it found is printed already.
    Found,
    /// It could not run (exit 2).
    Usage(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::Usage(message)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("jitgate: cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Check { policy, format } => check::run(&policy, format).await,
            Command::Test { policy, cases, format } => cases::run(&policy, &cases, format).await,
            Command::Explain {
                policy,
                principal,
                action,
                resource,
                context,
                format,
            } => explain::run(&policy, &principal, &action, &resource, context.as_deref(), format).await,
            Command::Simulate { policy, args, format } => simulate::run(&policy, &args, format).await,
            Command::Audit(AuditCommand::Verify {
                export,
                checkpoint,
                key,
                format,
            }) => audit::verify(&export, checkpoint.as_deref().zip(key.as_deref()), format),
            Command::Audit(AuditCommand::Export { config, out }) => ops::export(&config, out.as_ref()).await,
            Command::Migrate { config, print } => ops::migrate(&config, print).await,
            Command::Requests {
                config,
                reviewer,
                format,
            } => ops::requests(&config, reviewer.as_deref(), format).await,
            Command::Grants {
                config,
                principal,
                format,
            } => ops::grants(&config, &principal, format).await,
            Command::Approve(r) => {
                ops::review(&r.config, &r.id, &r.reviewer, r.comment.as_deref(), true, r.format).await
            }
            Command::Deny(r) => ops::review(&r.config, &r.id, &r.reviewer, r.comment.as_deref(), false, r.format).await,
            Command::Revoke { id, act } => {
                ops::revoke(&act.config, &id, &act.actor, act.reason.as_deref(), act.format).await
            }
            Command::Offboard { principal, act } => {
                ops::offboard(&act.config, &principal, &act.actor, act.reason.as_deref(), act.format).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Found) => ExitCode::from(1),
        Err(Failure::Usage(message)) => {
            eprintln!("jitgate: {message}");
            ExitCode::from(2)
        }
    }
}
