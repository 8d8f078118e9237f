//! jitgate's built-in schema part, merged with the embedding service's schema.
//!
//! ```cedarschema
//! namespace Jit {
//!   entity AccessRequest in [<every entity type of the service>] = {
//!     "requester": <principal type>, "action": String, "justification": String, "break_glass": Bool,
//!   };
//!   entity Grant in [<every entity type of the service>] = {
//!     "holder": <principal type>, "action": String, "break_glass": Bool,
//!   };
//!   action "review" appliesTo { principal: [<principal type>], resource: [AccessRequest] };
//!   action "revoke" appliesTo { principal: [<principal type>], resource: [Grant] };
//! }
//! ```
//! An access request (and a grant) is a member of the resource it is about, so a review policy
//! can say `resource in Team::"payments"` when the database belongs to that team.

use cedar_policy::{Schema, SchemaFragment};
use miette::Diagnostic;

use crate::CedarError;

/// The namespace of jitgate's own entity types and actions.
pub const NAMESPACE: &str = "Jit";

fn schema_error<E: Diagnostic + Send + Sync + 'static>(e: E) -> CedarError {
    CedarError::Schema {
        message: "the schema does not parse or is inconsistent".into(),
        help: e.help().map(|h| h.to_string()),
        source: Box::new(e),
    }
}

fn builtin(principal_type: &str, member_of: &[String]) -> String {
    let parents = if member_of.is_empty() {
        String::new()
    } else {
        format!(" in [{}]", member_of.join(", "))
    };
    format!(
        r#"namespace {NAMESPACE} {{
  entity AccessRequest{parents} = {{
    "requester": {principal_type},
    "action": String,
    "justification": String,
    "break_glass": Bool,
  }};
  entity Grant{parents} = {{
    "holder": {principal_type},
    "action": String,
    "break_glass": Bool,
  }};
  action "review" appliesTo {{ principal: [{principal_type}], resource: [AccessRequest] }};
  action "revoke" appliesTo {{ principal: [{principal_type}], resource: [Grant] }};
}}
"#
    )
}

/// The service's schema (Cedar schema syntax) merged with jitgate's part.
///
/// # Errors
/// [`CedarError::Schema`] with Cedar's diagnostic.
pub fn merged(service_schema: &str, principal_type: &str) -> Result<Schema, CedarError> {
    let (alone, _warnings) = Schema::from_cedarschema_str(service_schema).map_err(schema_error)?;
    let types: Vec<String> = alone
        .entity_types()
        .map(|t| t.to_string())
        .filter(|t| !t.starts_with(&format!("{NAMESPACE}::")))
        .collect();
    if !types.iter().any(|t| t == principal_type) {
        return Err(CedarError::Schema {
            message: format!(
                "the principal type `{principal_type}` is not an entity type of the schema (known: {})",
                types.join(", ")
            ),
            help: Some("declare it, or name the right one with CedarPolicyBuilder::principal_type".into()),
            source: Box::new(miette::MietteDiagnostic::new("unknown principal type")),
        });
    }
    let (service, _) = SchemaFragment::from_cedarschema_str(service_schema).map_err(schema_error)?;
    let (jit, _) = SchemaFragment::from_cedarschema_str(&builtin(principal_type, &types)).map_err(schema_error)?;
    Schema::from_schema_fragments([service, jit]).map_err(schema_error)
}
