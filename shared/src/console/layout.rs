//! The page around every page: the head with the stylesheet, a skip link, the navigation of the
//! visitor's role, the sign-out form, and the error pages.

use http::StatusCode;
use maud::{DOCTYPE, Markup, html};

use super::http::{Resp, html};
use super::{CSRF_FIELD, assets};
use crate::error::{ApiError, Code};
use crate::identity::session::Session;
use crate::identity::{Principal, Role};

/// Who is looking, for the page around the content: their principal and the token their forms
/// carry.
pub(crate) struct Chrome {
    pub principal: Option<Principal>,
    pub csrf: String,
}

impl Chrome {
    pub(crate) fn anonymous() -> Self {
        Self {
            principal: None,
            csrf: String::new(),
        }
    }

    pub(crate) fn of(session: Option<&Session>) -> Self {
        match session {
            Some(s) => Self {
                principal: Some(s.principal.clone()),
                csrf: s.id.csrf_token(),
            },
            None => Self::anonymous(),
        }
    }

    /// The hidden field every form of a signed-in page carries.
    pub(crate) fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name=(CSRF_FIELD) value=(self.csrf); }
    }
}

/// The navigation of a role: (path, label).
fn nav(role: Option<Role>) -> &'static [(&'static str, &'static str)] {
    match role {
        None => &[("/catalog", "Catalog"), ("/sign-in", "Sign in")],
        Some(Role::Customer) => &[
            ("/catalog", "Catalog"),
            ("/instances", "Instances"),
            ("/bills", "Bills"),
            ("/account", "Account"),
            ("/webhooks", "Webhooks"),
        ],
        Some(Role::Provider) => &[
            ("/products", "Products"),
            ("/services", "Services"),
            ("/instances", "Instances"),
            ("/bills", "Bills"),
            ("/settlements", "Settlements"),
            ("/webhooks", "Webhooks"),
        ],
        Some(Role::Operator) => &[
            ("/reviews", "Review queue"),
            ("/principals", "Principals"),
            ("/bill-runs", "Bill runs"),
            ("/bills", "Bills"),
            ("/settlements", "Settlements"),
            ("/webhooks", "Webhooks"),
        ],
        Some(Role::Platform) => &[],
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Operator => "operator",
        Role::Provider => "provider",
        Role::Customer => "customer",
        Role::Platform => "platform",
    }
}

/// A whole page: `title` is the page's heading and, with the console's name, its title.
pub(crate) fn page(chrome: &Chrome, title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · nestmarket console" }
                link rel="stylesheet" href=(assets::stylesheet_url());
                link rel="icon" type="image/svg+xml" href=(assets::icon_url());
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "nestmarket" }
                    nav aria-label="Main" {
                        ul {
                            @for (path, label) in nav(chrome.principal.as_ref().map(|p| p.role)) {
                                li { a href=(path) { (label) } }
                            }
                        }
                    }
                    @if let Some(p) = &chrome.principal {
                        div.who {
                            span { (p.name) " (" (role_name(p.role)) ")" }
                            form method="post" action="/sign-out" {
                                (chrome.csrf_field())
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (content)
                }
            }
        }
    }
}

/// A 200 page.
pub(crate) fn ok(chrome: &Chrome, title: &str, content: Markup) -> Resp {
    html(StatusCode::OK, page(chrome, title, content))
}

/// The page of a refusal or failure, with its status: 404 for what is missing or another
/// tenant's, 403 for another role's page, 500 without internals, 503 with `Retry-After`.
pub(crate) fn error_page(chrome: &Chrome, err: &ApiError) -> Resp {
    let title = match err.code {
        Code::NotFound => "Not found",
        Code::Forbidden => "Not allowed",
        Code::Unauthorized => "Sign-in needed",
        Code::MethodNotAllowed => "Not a form here",
        Code::Internal => "Something went wrong",
        Code::TooManyRequests => "Too many attempts",
        Code::StorageUnavailable => "Try again in a moment",
        _ => "Not done",
    };
    let content = html! {
        p.problem role="alert" { (err.detail) }
        @if !err.errors.is_empty() {
            ul { @for e in &err.errors { li { code { (e.field) } ": " (e.message) } } }
        }
        p { a href="/" { "Back to the console" } }
    };
    let mut response = html(err.status(), page(chrome, title, content));
    if let Some(seconds) = err.retry_after {
        response
            .headers_mut()
            .insert(::http::header::RETRY_AFTER, seconds.into());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::AccountType;

    fn customer(name: &str) -> Chrome {
        Chrome {
            principal: Some(Principal {
                id: "usr-1".into(),
                role: Role::Customer,
                name: name.into(),
                account_type: Some(AccountType::Individual),
                built_in: false,
                created_at: chrono::DateTime::UNIX_EPOCH,
                disabled_at: None,
            }),
            csrf: "t0ken".into(),
        }
    }

    #[test]
    fn a_principal_named_like_markup_is_shown_as_text() {
        let page = page(&customer("<script>alert(1)</script>"), "T", html! {}).into_string();
        assert!(!page.contains("<script>alert(1)"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!page.contains("<script"), "no script of any kind");
    }

    #[test]
    fn pages_carry_no_inline_style() {
        let page = page(&customer("c"), "T", html! {}).into_string();
        assert!(!page.contains("style="), "{page}");
        assert!(!page.contains("<style"), "{page}");
    }

    #[test]
    fn the_sign_out_form_carries_the_sessions_token() {
        let page = page(&customer("c"), "T", html! {}).into_string();
        assert!(page.contains(r#"<input type="hidden" name="csrf" value="t0ken">"#));
    }

    #[test]
    fn errors_never_show_internals() {
        let resp = error_page(&Chrome::anonymous(), &ApiError::internal("/secret/path"));
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!String::from_utf8_lossy(resp.body()).contains("/secret/path"));
    }
}
