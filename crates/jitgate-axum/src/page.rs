//! The reviewer page: one server-rendered HTML page (no script, no front-end build) at `ui/`
//! under the router, showing the caller's review queue — what each request asks for and why,
//! with a comment box and Approve/Deny — and the caller's own requests and grants.
//!
//! A review is a form `POST` to `ui/requests/{id}/review`; on success the browser is sent
//! back to the page (303), which says what was done; a refusal is shown on the page with its
//! status. The caller comes from the host's [`Authenticate`](crate::Authenticate) as for every
//! other endpoint (a session cookie, typically). Cross-site form posts are refused: a `POST`
//! whose `Origin` is not the page's own host, or whose `Sec-Fetch-Site` is `cross-site` or
//! `same-site`, gets 403 before anything is read.

use std::fmt::Write as _;
use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use jitgate_core::{
    AccessRequest, EntityRef, ErrorChain, ErrorCode, Grant, PageRequest, RequestFilter, RequestId, Verdict,
};
use serde::Deserialize;

use crate::handlers::Caller;
use crate::Api;

/// Items shown per section.
const SHOWN: usize = 50;

/// Escapes text for HTML element content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn duration(d: chrono::Duration) -> String {
    let minutes = d.num_minutes();
    match minutes {
        m if m % (24 * 60) == 0 && m > 0 => format!("{} d", m / (24 * 60)),
        m if m % 60 == 0 && m > 0 => format!("{} h", m / 60),
        m if m > 0 => format!("{m} min"),
        _ => format!("{} s", d.num_seconds()),
    }
}

/// `?done=approved&id=req_…` after a review.
#[derive(Deserialize, Default)]
pub(crate) struct Done {
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

/// `GET ui`: to `ui/`, so that the page's relative links resolve under it.
pub(crate) async fn to_page() -> Redirect {
    Redirect::permanent("ui/")
}

/// `GET ui/`: the page.
pub(crate) async fn show(
    State(api): State<Api>,
    Caller(caller): Caller,
    done: Result<Query<Done>, QueryRejection>,
) -> Response {
    let notice = done.ok().and_then(|Query(d)| match (d.done.as_deref(), d.id) {
        (Some(verdict @ ("approved" | "denied")), Some(id)) => Some(format!("You {verdict} {}.", esc(&id))),
        _ => None,
    });
    render(&api, &caller, StatusCode::OK, notice.map(|n| ("notice", n))).await
}

/// The form of a review.
#[derive(Deserialize)]
struct ReviewForm {
    verdict: String,
    #[serde(default)]
    comment: String,
}

/// `POST ui/requests/{id}/review`.
pub(crate) async fn review(
    State(api): State<Api>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(why) = same_origin(&headers) {
        return render(&api, &caller, StatusCode::FORBIDDEN, Some(("error", esc(why)))).await;
    }
    let form = match serde_urlencoded::from_bytes::<ReviewForm>(&body) {
        Ok(form) => form,
        Err(e) => {
            let why = format!("The form could not be read: {}", esc(&e.to_string()));
            return render(&api, &caller, StatusCode::BAD_REQUEST, Some(("error", why))).await;
        }
    };
    let (Ok(request), Some(verdict)) = (RequestId::from_str(&id), verdict(&form.verdict)) else {
        let why = format!(
            "`{}` / `{}` is not a request and a verdict",
            esc(&id),
            esc(&form.verdict)
        );
        return render(&api, &caller, StatusCode::BAD_REQUEST, Some(("error", why))).await;
    };
    let comment = Some(form.comment.trim()).filter(|c| !c.is_empty());
    let outcome = match verdict {
        Verdict::Approve => api.gate.approve(request, &caller, comment).await,
        Verdict::Deny => api.gate.deny(request, &caller, comment).await,
    };
    match outcome {
        Ok(_) => {
            let done = if verdict == Verdict::Approve {
                "approved"
            } else {
                "denied"
            };
            Redirect::to(&format!("../../?done={done}&id={request}")).into_response()
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.category().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let why = if e.category().is_client_error() {
                format!("{request} could not be reviewed: {}", esc(&ErrorChain(&e).to_string()))
            } else {
                tracing::error!(code = e.code(), error = %ErrorChain(&e), "a review from the page failed");
                format!("Reviewing {request} failed inside jitgate; try again.")
            };
            render(&api, &caller, status, Some(("error", why))).await
        }
    }
}

fn verdict(text: &str) -> Option<Verdict> {
    match text {
        "approve" => Some(Verdict::Approve),
        "deny" => Some(Verdict::Deny),
        _ => None,
    }
}

/// Refuses a form post another site made the browser send.
fn same_origin(headers: &HeaderMap) -> Result<(), &'static str> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(origin) = get("origin") {
        let host = get("host").unwrap_or_default();
        let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
        if origin == "null" || origin_host != host {
            return Err("This form was sent from another site: refused.");
        }
    }
    if let Some(site) = get("sec-fetch-site") {
        if site != "same-origin" && site != "none" {
            return Err("This form was sent from another site: refused.");
        }
    }
    Ok(())
}

/// The page, with a banner (`notice` or `error`) when given.
async fn render(api: &Api, caller: &EntityRef, status: StatusCode, banner: Option<(&str, String)>) -> Response {
    let first = PageRequest::first(SHOWN);
    let queue = api.gate.pending_for_reviewer(caller, &first).await;
    let mine = api.gate.requests_of(caller, &RequestFilter::any(), &first).await;
    let grants = api.gate.active_grants(caller, &first).await;
    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>jitgate — reviews</title>
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; max-width: 60rem; margin: 1rem auto; padding: 0 1rem; color: #222; }}
header {{ display: flex; justify-content: space-between; border-bottom: 1px solid #ccc; }}
.banner {{ padding: .5rem 1rem; border-radius: 4px; }} .notice {{ background: #e6f4ea; }} .error {{ background: #fce8e6; }}
article {{ border: 1px solid #ddd; border-radius: 4px; padding: .5rem 1rem; margin: .5rem 0; }}
dl {{ display: grid; grid-template-columns: max-content auto; gap: .2rem 1rem; }} dt {{ color: #666; }}
textarea {{ width: 100%; }} table {{ border-collapse: collapse; width: 100%; }}
td, th {{ text-align: left; padding: .2rem .5rem; border-bottom: 1px solid #eee; }}
</style></head><body>
<header><h1>jitgate</h1><p>Signed in as <b id="caller">{caller}</b></p></header>
"#,
        caller = esc(&caller.to_string())
    );
    if let Some((kind, text)) = banner {
        let _ = writeln!(html, r#"<p class="banner {kind}" id="{kind}" role="status">{text}</p>"#);
    }
    html.push_str("<section id=\"queue\"><h2>Waiting for your review</h2>\n");
    match queue {
        Ok(page) if page.items.is_empty() => html.push_str("<p>Nothing waits for you.</p>\n"),
        Ok(page) => page.items.iter().for_each(|r| queue_item(&mut html, r)),
        Err(e) => failed(&mut html, "your queue", &e),
    }
    html.push_str("</section>\n<section id=\"requests\"><h2>Your requests</h2>\n");
    match mine {
        Ok(page) if page.items.is_empty() => html.push_str("<p>You have made no requests.</p>\n"),
        Ok(page) => requests_table(&mut html, &page.items),
        Err(e) => failed(&mut html, "your requests", &e),
    }
    html.push_str("</section>\n<section id=\"grants\"><h2>Your grants</h2>\n");
    match grants {
        Ok(page) if page.items.is_empty() => html.push_str("<p>You hold no grants.</p>\n"),
        Ok(page) => grants_table(&mut html, &page.items),
        Err(e) => failed(&mut html, "your grants", &e),
    }
    html.push_str("</section>\n</body></html>\n");
    let mut response = (status, Html(html)).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    response
}

fn failed(html: &mut String, what: &str, e: &jitgate_core::Error) {
    tracing::error!(code = e.code(), error = %ErrorChain(e), "the reviewer page could not read {what}");
    let _ = writeln!(
        html,
        r#"<p class="banner error">Could not read {what}: {}</p>"#,
        esc(&e.to_string())
    );
}

fn queue_item(html: &mut String, r: &AccessRequest) {
    let id = r.id.to_string();
    let flow: Vec<String> = r
        .flow
        .requirements
        .iter()
        .map(|q| format!("{} of {}", q.min_approvals, q.reviewers))
        .collect();
    let context: Vec<String> = r
        .action
        .context
        .iter()
        .map(|(k, v)| format!("{k} = {}", jitgate_core::wire::attr_json(v)))
        .collect();
    let reviews: Vec<String> = r
        .reviews
        .iter()
        .map(|v| format!("{} ({:?})", v.reviewer, v.verdict))
        .collect();
    let _ = write!(
        html,
        r#"<article class="request" id="{id}">
<h3>{who} asks to {action} on {resource}</h3>
<dl>
<dt>Why</dt><dd class="justification">{why}</dd>
<dt>For</dt><dd>{duration}{break_glass}</dd>
<dt>Needs</dt><dd>{flow}</dd>
<dt>Context</dt><dd>{context}</dd>
<dt>Reviewed by</dt><dd>{reviews}</dd>
<dt>Asked</dt><dd>{asked}</dd>
<dt>Decide by</dt><dd>{deadline}</dd>
</dl>
<form method="post" action="requests/{id}/review">
<label>Comment <textarea name="comment" rows="2"></textarea></label>
<button name="verdict" value="approve">Approve</button>
<button name="verdict" value="deny">Deny</button>
</form>
</article>
"#,
        who = esc(&r.principal.to_string()),
        action = esc(&r.action.scope.action.to_string()),
        resource = esc(&r.action.scope.resource.to_string()),
        why = esc(r.justification.as_deref().unwrap_or("(none given)")),
        duration = duration(r.duration),
        break_glass = if r.break_glass { " (break-glass)" } else { "" },
        flow = esc(&flow.join(" and ")),
        context = esc(&if context.is_empty() {
            "-".to_owned()
        } else {
            context.join(", ")
        }),
        reviews = esc(&if reviews.is_empty() {
            "nobody yet".to_owned()
        } else {
            reviews.join(", ")
        }),
        asked = when(r.created_at),
        deadline = when(r.deadline),
    );
}

fn requests_table(html: &mut String, items: &[AccessRequest]) {
    html.push_str("<table><tr><th>Request</th><th>For</th><th>State</th><th>Asked</th></tr>\n");
    for r in items {
        let _ = writeln!(
            html,
            r#"<tr class="request" id="mine-{id}"><td>{id}</td><td>{scope}</td><td class="state">{state}</td><td>{asked}</td></tr>"#,
            id = r.id,
            scope = esc(&r.action.scope.to_string()),
            state = r.state,
            asked = when(r.created_at),
        );
    }
    html.push_str("</table>\n");
}

fn grants_table(html: &mut String, items: &[Grant]) {
    html.push_str("<table><tr><th>Grant</th><th>For</th><th>From</th><th>Until</th><th>Uses</th></tr>\n");
    for g in items {
        let uses = g
            .uses
            .map_or_else(|| "any".to_owned(), |u| format!("{} of {}", u.used, u.limit));
        let _ = writeln!(
            html,
            r#"<tr class="grant" id="{id}"><td>{id}</td><td>{scope}</td><td>{from}</td><td>{until}</td><td>{uses}</td></tr>"#,
            id = g.id,
            scope = esc(&g.scope.to_string()),
            from = when(g.window.not_before()),
            until = when(g.window.expires_at()),
        );
    }
    html.push_str("</table>\n");
}
