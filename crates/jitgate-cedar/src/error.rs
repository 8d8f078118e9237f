//! Load-time errors, each saying what is wrong and where. Every error is a
//! [`miette::Diagnostic`]: the ones about policy text carry the file's text and a labelled
//! span, so a reporter (miette's, or a CI annotation) can show the offending lines.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

/// Where in a source text something is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Location {
    /// The source: a file path or the name given with the text.
    pub source_name: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The offending text (its first line).
    pub snippet: String,
    /// The byte offset of the span in the source text.
    pub offset: usize,
    /// The span's length in bytes.
    pub len: usize,
    text: NamedText,
}

/// A source's text with its name, shared by every error about it.
#[derive(Clone)]
struct NamedText(Arc<NamedSource<Arc<str>>>);

impl fmt::Debug for NamedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

impl PartialEq for NamedText {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.inner() == other.0.inner()
    }
}

impl Eq for NamedText {}

impl Location {
    /// The span `offset..offset + len` of `text` (named `name`), with its line and column.
    pub(crate) fn new(name: &str, text: &Arc<str>, offset: usize, len: usize) -> Self {
        let offset = floor_char_boundary(text, offset.min(text.len()));
        let end = floor_char_boundary(text, (offset + len).min(text.len()));
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rfind('\n')
            .map_or(before.chars().count(), |nl| before[nl + 1..].chars().count())
            + 1;
        let snippet = text[offset..end].lines().next().unwrap_or_default().to_owned();
        Self {
            source_name: name.to_owned(),
            line,
            column,
            snippet,
            offset,
            len: end - offset,
            text: NamedText(Arc::new(NamedSource::new(name, text.clone()))),
        }
    }

    fn label(&self, label: Option<String>) -> LabeledSpan {
        LabeledSpan::new(label, self.offset, self.len)
    }

    fn source_code(&self) -> &dyn SourceCode {
        self.text.0.as_ref()
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

fn at(location: &Option<Location>) -> String {
    location.as_ref().map(|l| format!(" at {l}")).unwrap_or_default()
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
        /// What jitgate was doing.
        message: String,
        /// Cedar's help text.
        help: Option<String>,
        /// Cedar's diagnostic, whole.
        #[source]
        source: Box<dyn Diagnostic + Send + Sync>,
    },
    /// Policy text does not parse (Cedar's diagnostic, with every parse error of the file, is
    /// the `source()`).
    #[error("{location}: the policy text does not parse{}", help_suffix(help))]
    Parse {
        /// Where (the first error).
        location: Location,
        /// Cedar's message.
        message: String,
        /// Cedar's help text.
        help: Option<String>,
        /// Cedar's diagnostic, whole.
        #[source]
        source: Box<cedar_policy::ParseErrors>,
    },
    /// A policy fails strict validation against the schema, or cannot be used by jitgate (a
    /// template).
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
    #[error(
        "policy `{policy_id}`{}, annotation @{annotation}(\"{value}\"): {problem}",
        at(location)
    )]
    Annotation {
        /// The policy.
        policy_id: String,
        /// The annotation's name.
        annotation: String,
        /// Its value.
        value: String,
        /// What is wrong and what to write instead.
        problem: String,
        /// Where (the annotation in the policy text, when it is known).
        location: Option<Location>,
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
        /// The second definition.
        location: Option<Location>,
    },
    /// Policy text too deeply nested or too long to be parsed and evaluated safely.
    #[error("{location}: {problem}")]
    TooComplex {
        /// Where.
        location: Location,
        /// What is too deep or too long, and the limit.
        problem: String,
    },
    /// A template link does not parse, names no template, or does not fill its slots.
    #[error("template link{} in {source_name}: {message}", link_id.as_ref().map(|l| format!(" `{l}`")).unwrap_or_default())]
    Link {
        /// The links' file (or the name given with the text).
        source_name: String,
        /// The link, when the error is about one.
        link_id: Option<String>,
        /// What is wrong.
        message: String,
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

impl CedarError {
    /// Where in a source text the error is, if it is about one.
    pub fn location(&self) -> Option<&Location> {
        match self {
            CedarError::Parse { location, .. }
            | CedarError::Validation { location, .. }
            | CedarError::TooComplex { location, .. } => Some(location),
            CedarError::Annotation { location, .. } | CedarError::DuplicateId { location, .. } => location.as_ref(),
            _ => None,
        }
    }

    fn code_name(&self) -> &'static str {
        match self {
            CedarError::Io { .. } => "jitgate::cedar::io",
            CedarError::Schema { .. } => "jitgate::cedar::schema",
            CedarError::Parse { .. } => "jitgate::cedar::parse",
            CedarError::Validation { .. } => "jitgate::cedar::validation",
            CedarError::Annotation { .. } => "jitgate::cedar::annotation",
            CedarError::DuplicateId { .. } => "jitgate::cedar::duplicate_id",
            CedarError::TooComplex { .. } => "jitgate::cedar::too_complex",
            CedarError::Link { .. } => "jitgate::cedar::link",
            CedarError::Entities { .. } => "jitgate::cedar::entities",
        }
    }
}

impl Diagnostic for CedarError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code_name()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self {
            CedarError::Schema { help, .. } | CedarError::Parse { help, .. } | CedarError::Validation { help, .. } => {
                help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
            }
            CedarError::Annotation { problem, .. } => Some(Box::new(problem)),
            _ => None,
        }
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.location().map(Location::source_code)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        match self {
            // Every parse error of the file, at the spans Cedar gives (offsets into the same text).
            CedarError::Parse { source, location, .. } => {
                let spans: Vec<LabeledSpan> = source
                    .iter()
                    .flat_map(|e| e.labels().into_iter().flatten().collect::<Vec<_>>())
                    .collect();
                if spans.is_empty() {
                    Some(Box::new(std::iter::once(location.label(None))))
                } else {
                    Some(Box::new(spans.into_iter()))
                }
            }
            CedarError::Validation { location, message, .. } => {
                Some(Box::new(std::iter::once(location.label(Some(message.clone())))))
            }
            CedarError::TooComplex { location, problem } => {
                Some(Box::new(std::iter::once(location.label(Some(problem.clone())))))
            }
            CedarError::Annotation { location, problem, .. } => location
                .as_ref()
                .map(|l| Box::new(std::iter::once(l.label(Some(problem.clone())))) as Box<dyn Iterator<Item = _>>),
            CedarError::DuplicateId { location, .. } => location.as_ref().map(|l| {
                Box::new(std::iter::once(l.label(Some("used again here".into())))) as Box<dyn Iterator<Item = _>>
            }),
            _ => None,
        }
    }
}

/// Every error found while loading a schema, policies and entities together: each file is
/// read, parsed, validated and its annotations checked, and all that is wrong is reported at
/// once. A [`miette::Diagnostic`] whose `related()` are the errors.
#[derive(Debug)]
pub struct CedarErrors(Vec<CedarError>);

impl CedarErrors {
    /// At least one error.
    pub(crate) fn new(errors: Vec<CedarError>) -> Option<Self> {
        (!errors.is_empty()).then_some(Self(errors))
    }

    /// The errors, in the order of the sources and of the policies in them.
    pub fn errors(&self) -> &[CedarError] {
        &self.0
    }

    /// The first error.
    pub fn first(&self) -> &CedarError {
        &self.0[0]
    }

    /// How many errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true: there is at least one error.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<CedarError> for CedarErrors {
    fn from(e: CedarError) -> Self {
        Self(vec![e])
    }
}

impl IntoIterator for CedarErrors {
    type Item = CedarError;
    type IntoIter = std::vec::IntoIter<CedarError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl fmt::Display for CedarErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "{} errors in the Cedar schema, policies and entities:", many.len())?;
                for e in many {
                    write!(f, "\n- {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for CedarErrors {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self.0.as_slice() {
            // One error: this is that error; its cause is the cause.
            [one] => std::error::Error::source(one),
            _ => None,
        }
    }
}

impl Diagnostic for CedarErrors {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self.0.as_slice() {
            [one] => one.code(),
            _ => Some(Box::new("jitgate::cedar::load")),
        }
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self.0.as_slice() {
            [one] => one.help(),
            _ => None,
        }
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        match self.0.as_slice() {
            [one] => one.source_code(),
            _ => None,
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        match self.0.as_slice() {
            [one] => one.labels(),
            _ => None,
        }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        match self.0.as_slice() {
            [_] => None,
            many => Some(Box::new(many.iter().map(|e| e as &dyn Diagnostic))),
        }
    }
}
