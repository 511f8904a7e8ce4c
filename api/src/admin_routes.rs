//! `/v1/admin/accounts`: the operator's account administration over HTTP,
//! behind the operator token.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use transaction_store::{Account, AccountStatus};

use crate::account_admin::{AccountAdmin, AdminError, WithSecret};
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::operator::Operator;
use crate::state::AppState;
use crate::transaction_resource::rfc3339;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/accounts", get(list).post(create))
        .route("/v1/admin/accounts/{id}", get(show))
        .route("/v1/admin/accounts/{id}/disable", post(disable))
        .route("/v1/admin/accounts/{id}/enable", post(enable))
        .route("/v1/admin/accounts/{id}/rotate-secret", post(rotate))
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub struct AccountResource {
    pub id: String,
    pub name: String,
    pub status: String,
    pub created_at: String,
}

impl From<&Account> for AccountResource {
    fn from(a: &Account) -> Self {
        AccountResource {
            id: a.id.to_string(),
            name: a.name.clone(),
            status: a.status.as_str().into(),
            created_at: rfc3339(a.created_at),
        }
    }
}

/// The only response that carries a secret, once.
#[derive(Serialize, Deserialize, Debug)]
pub struct AccountWithSecret {
    pub account: AccountResource,
    pub secret: String,
}

impl From<WithSecret> for AccountWithSecret {
    fn from(w: WithSecret) -> Self {
        AccountWithSecret { account: AccountResource::from(&w.account), secret: w.secret }
    }
}

#[derive(Serialize, Deserialize, Debug)]
pub struct AccountList {
    pub data: Vec<AccountResource>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    pub id: String,
    pub name: String,
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::InvalidId(_) => ApiError::invalid("invalid_account_id", "id", e.to_string()),
            AdminError::InvalidName => ApiError::invalid("invalid_account_name", "name", e.to_string()),
            AdminError::NotFound(_) => ApiError::NotFound { code: "account_not_found", message: e.to_string() },
            AdminError::AlreadyExists(_) => ApiError::Conflict { code: "account_exists", message: e.to_string() },
            AdminError::Store(s) => s.into(),
        }
    }
}

fn admin(state: &AppState) -> AccountAdmin {
    AccountAdmin { repo: state.store.accounts.clone(), hasher: state.hasher.clone() }
}

async fn list(State(state): State<AppState>, _: Operator) -> Result<Json<AccountList>, ApiError> {
    let accounts = admin(&state).list().await?;
    Ok(Json(AccountList { data: accounts.iter().map(AccountResource::from).collect() }))
}

async fn create(
    State(state): State<AppState>,
    _: Operator,
    JsonBody(body): JsonBody<CreateAccount>,
) -> Result<(StatusCode, Json<AccountWithSecret>), ApiError> {
    let created = admin(&state).create(&body.id, &body.name).await?;
    tracing::info!(account_id = %created.account.id, "account created");
    Ok((StatusCode::CREATED, Json(created.into())))
}

async fn show(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<AccountResource>, ApiError> {
    let account = admin(&state).get(&id).await.map_err(not_found_for_bad_id)?;
    Ok(Json(AccountResource::from(&account)))
}

async fn disable(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> Result<Json<AccountResource>, ApiError> {
    set_status(state, op, id, AccountStatus::Disabled).await
}

async fn enable(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> Result<Json<AccountResource>, ApiError> {
    set_status(state, op, id, AccountStatus::Active).await
}

async fn set_status(
    state: AppState,
    _: Operator,
    id: String,
    status: AccountStatus,
) -> Result<Json<AccountResource>, ApiError> {
    let account = admin(&state).set_status(&id, status).await.map_err(not_found_for_bad_id)?;
    tracing::info!(account_id = %account.id, status = %status, "account status changed");
    Ok(Json(AccountResource::from(&account)))
}

async fn rotate(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<AccountWithSecret>, ApiError> {
    let rotated = admin(&state).rotate_secret(&id).await.map_err(not_found_for_bad_id)?;
    tracing::info!(account_id = %rotated.account.id, "account secret rotated");
    Ok(Json(rotated.into()))
}

/// In a path, an id that cannot exist is simply not found.
fn not_found_for_bad_id(e: AdminError) -> AdminError {
    match e {
        AdminError::InvalidId(_) => AdminError::NotFound(String::new()),
        e => e,
    }
}
