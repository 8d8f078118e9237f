//! Load-time errors, each saying what is wrong and where.

use std::path::PathBuf;

/// Where in a source text something is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The source: a file path or the name given with the text.
    pub source_name: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The offending text.
    pub snippet: String,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.source_name, self.line, self.column)?;
        if !self.snippet.is_empty() {
            write!(f, " `{}`", self.snippet)?;
        }
        Ok(())
    }
}

fn help_suffix(help: &Option<String>) -> String {
    help.as_ref().map(|h| format!(" (help: {h})")).unwrap_or_default()
}

/// Loading a schema, policies or entities failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CedarError {
    /// A file or directory could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The schema does not parse or is inconsistent (Cedar's diagnostic is the `source()`).
    #[error("schema error: {message}{}", help_suffix(help))]
    Schema {
        /// Cedar's message.
        message: String,
        /// Cedar's help text.
        help: Option<String>,
        /// Cedar's diagnostic, whole.
        #[source]
        source: Box<dyn miette::Diagnostic + Send + Sync>,
    },
    /// Policy text does not parse (Cedar's diagnostic is the `source()`).
    #[error("{location}: the policy text does not parse{}", help_suffix(help))]
    Parse {
        /// Where.
        location: Location,
        /// Cedar's message.
        message: String,
        /// Cedar's help text.
        help: Option<String>,
        /// Cedar's diagnostic, whole.
        #[source]
        source: Box<cedar_policy::ParseErrors>,
    },
    /// A policy fails strict validation against the schema.
    #[error("policy `{policy_id}` at {location}: {message}{}", help_suffix(help))]
    Validation {
        /// The policy.
        policy_id: String,
        /// Where.
        location: Location,
        /// Cedar's message.
        message: String,
        /// Cedar's help text.
        help: Option<String>,
    },
    /// A jitgate annotation has an unknown name or a bad value, or sits on a policy it does not apply to.
    #[error("policy `{policy_id}`, annotation @{annotation}(\"{value}\"): {problem}")]
    Annotation {
        /// The policy.
        policy_id: String,
        /// The annotation's name.
        annotation: String,
        /// Its value.
        value: String,
        /// What is wrong and what to write instead.
        problem: String,
    },
    /// Two policies have the same id.
    #[error("policy id `{policy_id}` is used twice (in {first} and {second}); give each policy its own @id")]
    DuplicateId {
        /// The id.
        policy_id: String,
        /// Where it was first defined.
        first: String,
        /// Where again.
        second: String,
    },
    /// The entities do not parse or do not match the schema.
    #[error("entities error: {message}")]
    Entities {
        /// What is wrong.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}
