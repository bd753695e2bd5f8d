//! Principals and their API tokens (docs/RULES.md §2). Tokens are shown once, at creation or
//! rotation, and stored only as SHA-256 hashes; the `admin_token` variable authenticates the
//! built-in operator.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult, Code};
use crate::platform::clock::rfc3339;
use crate::platform::ids::{new_id, random_bytes};
use crate::platform::storage::{Database, enum_from_str, transaction};

pub(crate) mod session;
mod store;
pub(crate) mod throttle;

/// What a principal may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Marketplace staff: review listings, manage principals, see everything.
    Operator,
    /// Lists its services and pushes their usage.
    Provider,
    /// Orders products and pays for their usage.
    Customer,
    /// The deployment platform's reporters and schedulers: report usage, start bill runs.
    Platform,
}

/// What kind of customer account: some products are sold to enterprises only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountType {
    /// A company's account.
    Enterprise,
    /// A person's account.
    Individual,
}

/// Someone the API knows by a bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// `usr-…`.
    pub id: String,
    /// What it may do.
    pub role: Role,
    /// Its display name.
    pub name: String,
    /// A customer's kind of account; `None` for every other role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_type: Option<AccountType>,
    /// Whether it is the built-in operator of the `admin_token` variable.
    pub built_in: bool,
    /// When it was created.
    #[serde(with = "crate::platform::clock::instant")]
    pub created_at: DateTime<Utc>,
    /// When an operator disabled it: its token no longer works; its data stays.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "crate::platform::clock::instant::option"
    )]
    pub disabled_at: Option<DateTime<Utc>>,
}

/// The operator authenticated by the `admin_token` variable. It exists without a database row, so
/// a fresh deployment can create its first principals.
pub(crate) const BUILT_IN_OPERATOR_ID: &str = "usr-admin";

impl Principal {
    /// The operator of the `admin_token` variable.
    pub fn built_in_operator() -> Self {
        Self {
            id: BUILT_IN_OPERATOR_ID.to_owned(),
            role: Role::Operator,
            name: "built-in operator".to_owned(),
            account_type: None,
            built_in: true,
            created_at: DateTime::UNIX_EPOCH,
            disabled_at: None,
        }
    }

    /// Whether it sees everything.
    pub fn is_operator(&self) -> bool {
        self.role == Role::Operator
    }

    /// Role check for an endpoint: 403 for a role the endpoint does not serve.
    pub fn require(&self, roles: &[Role]) -> ApiResult<()> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }
}

/// A freshly issued bearer token: 256 random bits. Only its hash is kept.
pub(crate) struct IssuedToken(String);

impl IssuedToken {
    fn generate() -> Self {
        Self(format!("nm_{}", hex::encode(random_bytes::<32>())))
    }

    pub(crate) fn reveal(&self) -> &str {
        &self.0
    }

    fn hash(&self) -> String {
        token_hash(&self.0)
    }
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares digests rather than the secrets themselves, in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Resolves a bearer token to its principal: 401 when no principal holds it.
pub(crate) fn principal_for_token(
    db: &dyn Database,
    token: &str,
    admin_token: &str,
) -> ApiResult<Principal> {
    if !admin_token.is_empty() && same_secret(token, admin_token) {
        return Ok(Principal::built_in_operator());
    }
    store::find_by_token_hash(db, &token_hash(token))?
        .ok_or_else(|| ApiError::new(Code::Unauthorized, "the bearer token is not valid"))
}

/// Extracts the token from an `Authorization` header value.
pub(crate) fn bearer_token(authorization: Option<&str>) -> ApiResult<&str> {
    authorization
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                Code::Unauthorized,
                "an `Authorization: Bearer <token>` header is required",
            )
        })
}

/// The body of `POST /api/v1/principals`, loose so that every mistake is reported at once.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewPrincipal {
    pub role: Option<String>,
    pub name: Option<String>,
    pub account_type: Option<String>,
}

/// A principal to create, valid by construction.
struct PrincipalSpec {
    role: Role,
    name: String,
    account_type: Option<AccountType>,
}

impl NewPrincipal {
    fn validate(self) -> ApiResult<PrincipalSpec> {
        let mut e = crate::validate::Errors::new();
        let role = match self.role.as_deref() {
            None => {
                e.add(
                    "role",
                    Code::Required,
                    "one of operator, provider, customer, platform",
                );
                None
            }
            Some(r) => enum_from_str::<Role>(r).ok().or_else(|| {
                e.add(
                    "role",
                    Code::InvalidValue,
                    "one of operator, provider, customer, platform",
                );
                None
            }),
        };
        if let Some(name) = e.required("name", &self.name) {
            e.text("name", name, 1, 100, Code::TooLong);
        }
        let account_type = match self.account_type.as_deref() {
            None => None,
            Some(a) => enum_from_str::<AccountType>(a).ok().or_else(|| {
                e.add(
                    "account_type",
                    Code::InvalidValue,
                    "`enterprise` or `individual`",
                );
                None
            }),
        };
        match (role, &self.account_type) {
            (Some(Role::Customer), None) => e.add(
                "account_type",
                Code::Required,
                "customers are `enterprise` or `individual`",
            ),
            (Some(r), Some(_)) if r != Role::Customer => e.add(
                "account_type",
                Code::InvalidValue,
                "only customers have an account type",
            ),
            _ => {}
        }
        e.finish()?;
        match (role, self.name) {
            (Some(role), Some(name)) => Ok(PrincipalSpec {
                role,
                name,
                account_type,
            }),
            _ => Err(ApiError::internal(
                "principal fields missing after validation",
            )),
        }
    }
}

/// Creates a principal and issues its first token, shown once.
pub(crate) fn create_principal(
    db: &dyn Database,
    new: NewPrincipal,
    now: DateTime<Utc>,
) -> ApiResult<(Principal, IssuedToken)> {
    let new = new.validate()?;
    let token = IssuedToken::generate();
    let principal = Principal {
        id: new_id("usr", now),
        role: new.role,
        name: new.name,
        account_type: new.account_type,
        built_in: false,
        created_at: now,
        disabled_at: None,
    };
    store::insert(db, &principal, &token.hash())?;
    Ok((principal, token))
}

pub(crate) fn find_principal(db: &dyn Database, id: &str) -> ApiResult<Principal> {
    store::find(db, id)
}

/// Makes the transactions deciding something of these principals — an operator setting a
/// provider's commission, a close settling its month at it — take turns, until the calling
/// transaction ends: their rows are locked, in one order (on SQLite, where every writing
/// transaction holds the database's one write lock, there is nothing to do).
pub(crate) fn lock_principals(db: &dyn Database, ids: &[&str]) -> ApiResult<()> {
    Ok(store::lock(db, ids)?)
}

/// An operator disables a principal (its token stops working at once and its console sessions
/// end; everything it made stays) or enables it again, when its token works again and it signs
/// in to the console anew. The built-in operator is the deployment's: 409 `BuiltInPrincipal`.
pub(crate) fn set_disabled(
    db: &dyn Database,
    id: &str,
    disabled: bool,
    now: DateTime<Utc>,
) -> ApiResult<Principal> {
    if id == BUILT_IN_OPERATOR_ID {
        return Err(ApiError::new(
            Code::BuiltInPrincipal,
            "the built-in operator is the admin_token variable; change it in the deployment",
        ));
    }
    transaction(db, |db| {
        store::set_disabled(db, id, disabled.then(|| rfc3339(now)).as_deref())?;
        if disabled {
            session::end_all(db, id)?;
        }
        store::find(db, id)
    })
}

/// Issues a new token for the principal: the old one stops working at once.
pub(crate) fn rotate_token(
    db: &dyn Database,
    id: &str,
    now: DateTime<Utc>,
) -> ApiResult<IssuedToken> {
    let token = IssuedToken::generate();
    store::replace_token(db, id, &token.hash(), &rfc3339(now))?;
    Ok(token)
}

pub(crate) fn list_principals(
    db: &dyn Database,
    role: Option<Role>,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<Principal>> {
    store::list(db, role, after, limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let (a, b) = (IssuedToken::generate(), IssuedToken::generate());
        assert_ne!(a.reveal(), b.reveal());
        assert_eq!(a.reveal().len(), 3 + 64);
        assert_eq!(a.hash().len(), 64);
        assert_ne!(a.hash(), a.reveal());
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_token(Some("Bearer abc")).unwrap(), "abc");
        assert_eq!(bearer_token(None).unwrap_err().code, Code::Unauthorized);
        assert_eq!(
            bearer_token(Some("Basic abc")).unwrap_err().code,
            Code::Unauthorized
        );
        assert_eq!(
            bearer_token(Some("Bearer ")).unwrap_err().code,
            Code::Unauthorized
        );
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("s3cret", "s3cret"));
        assert!(!same_secret("s3cret", "s3cret "));
        assert!(!same_secret("", "x"));
    }

    #[test]
    fn account_type_goes_with_customers_only() {
        let p = |role: &str, account_type: Option<&str>| NewPrincipal {
            role: Some(role.into()),
            name: Some("n".into()),
            account_type: account_type.map(Into::into),
        };
        assert!(p("customer", Some("individual")).validate().is_ok());
        assert!(p("customer", None).validate().is_err());
        assert!(p("provider", Some("enterprise")).validate().is_err());
        assert!(p("platform", None).validate().is_ok());
        assert!(p("customer", Some("family")).validate().is_err());
    }
}
