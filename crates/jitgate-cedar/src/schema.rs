//! The two schemas a [`CedarPolicy`](crate::CedarPolicy) validates against.
//!
//! - **The service's schema, alone.** The service's policies are validated against it exactly
//!   as bare Cedar validates them: jitgate's own actions and entity types are not in it, so an
//!   unconstrained `action` that reads `context.x` or `resource.owner` validates (and decides)
//!   as it does without jitgate.
//! - **The review schema**: the service's schema with jitgate's part merged in. Only the policies
//!   of jitgate's own actions (`Jit::Action::"review"`, `"revoke"`, `"read_audit"`) are validated
//!   against it and evaluated for reviews and revokes.
//!
//! ```cedarschema
//! namespace Jit {
//!   entity AccessRequest in [<every entity type of the service>] = {
//!     "requester": <principal type>,        // only with one principal type
//!     "action": String, "justification": String, "break_glass": Bool,
//!   };
//!   entity Grant in [<every entity type of the service>] = {
//!     "holder": <principal type>,           // only with one principal type
//!     "action": String, "break_glass": Bool,
//!   };
//!   action "review" appliesTo { principal: [<principal types>], resource: [AccessRequest] };
//!   entity AuditTrail;   // the one audit trail, `Jit::AuditTrail::"trail"`
//!   action "revoke" appliesTo { principal: [<principal types>], resource: [Grant] };
//!   action "read_audit" appliesTo { principal: [<principal types>], resource: [AuditTrail] };
//! }
//! ```
//! An access request (and a grant) is a member of the resource it is about, so a review policy
//! can say `resource in Team::"payments"` when the database belongs to that team. Cedar has no
//! union types: with several principal types, `requester` and `holder` cannot be typed and are
//! left out of the schema (a review policy that reads them does not validate).

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

fn builtin(principal_types: &[String], member_of: &[String]) -> String {
    let parents = if member_of.is_empty() {
        String::new()
    } else {
        format!(" in [{}]", member_of.join(", "))
    };
    let (requester, holder) = match principal_types {
        [one] => (format!("\"requester\": {one},"), format!("\"holder\": {one},")),
        _ => (String::new(), String::new()),
    };
    let actions = if principal_types.is_empty() {
        String::new()
    } else {
        let principals = principal_types.join(", ");
        format!(
            r#"  action "review" appliesTo {{ principal: [{principals}], resource: [AccessRequest] }};
  action "revoke" appliesTo {{ principal: [{principals}], resource: [Grant] }};
  action "read_audit" appliesTo {{ principal: [{principals}], resource: [AuditTrail] }};
"#
        )
    };
    format!(
        r#"namespace {NAMESPACE} {{
  entity AccessRequest{parents} = {{
    {requester}
    "action": String,
    "justification": String,
    "break_glass": Bool,
  }};
  entity Grant{parents} = {{
    {holder}
    "action": String,
    "break_glass": Bool,
  }};
  entity AuditTrail;
{actions}}}
"#
    )
}

/// The service's schema and the review schema, with the principal types they were built for.
#[derive(Debug)]
pub struct Schemas {
    /// The service's schema alone: the service's policies validate against it.
    pub service: Schema,
    /// The service's schema with jitgate's part: the review and revoke policies validate
    /// against it.
    pub review: Schema,
    /// The entity types that request, review and hold grants.
    pub principal_types: Vec<String>,
}

/// Parses the service's schema (Cedar schema syntax) and merges jitgate's part into a copy.
/// `principal_types`: the entity types that request, review and hold grants; `None` takes every
/// type that is a principal of some action of the schema.
///
/// # Errors
/// [`CedarError::Schema`] with Cedar's diagnostic, or naming a principal type the schema lacks.
pub fn load(service_schema: &str, principal_types: Option<&[String]>) -> Result<Schemas, CedarError> {
    let (service, _warnings) = Schema::from_cedarschema_str(service_schema).map_err(schema_error)?;
    let types: Vec<String> = service
        .entity_types()
        .map(|t| t.to_string())
        .filter(|t| !t.starts_with(&format!("{NAMESPACE}::")))
        .collect();
    let principal_types = match principal_types {
        Some(given) => {
            if let Some(unknown) = given.iter().find(|p| !types.contains(p)) {
                return Err(CedarError::Schema {
                    message: format!(
                        "the principal type `{unknown}` is not an entity type of the schema (known: {})",
                        types.join(", ")
                    ),
                    help: Some("declare it, or name the right ones with CedarPolicyBuilder::principal_types".into()),
                    source: Box::new(miette::MietteDiagnostic::new("unknown principal type")),
                });
            }
            given.to_vec()
        }
        None => {
            let mut found: Vec<String> = service.principals().map(ToString::to_string).collect();
            found.sort();
            found.dedup();
            found
        }
    };
    let (fragment, _) = SchemaFragment::from_cedarschema_str(service_schema).map_err(schema_error)?;
    let (jit, _) = SchemaFragment::from_cedarschema_str(&builtin(&principal_types, &types)).map_err(schema_error)?;
    let review = Schema::from_schema_fragments([fragment, jit]).map_err(schema_error)?;
    Ok(Schemas {
        service,
        review,
        principal_types,
    })
}
