//! `authd.v1.AdminService`: user and service-account management over gRPC. The admin
//! check is an interceptor in front of the whole service, so no method (and none added
//! later) can be reached without it.
use std::sync::Arc;
use std::time::Duration;

use authd_client::Claims;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

use super::bearer;
use crate::auth::admin::{self as users, UserRef};
use crate::auth::service_accounts as accounts;
use crate::auth::{self, Auth, AuthError, roles};
use crate::proto::admin_service_server::{AdminService, AdminServiceServer};
use crate::proto::{
    CreateServiceAccountRequest, CreateUserRequest, DeleteUserResponse, ListServiceAccountsRequest,
    ListServiceAccountsResponse, ListSessionsResponse, ListUsersRequest, ListUsersResponse,
    RevokeUserSessionsResponse, ServiceAccount, ServiceAccountRef, ServiceAccountSecret, Session,
    SetPasswordRequest, SetRolesRequest, User, user_ref,
};
use crate::store::service_accounts::ServiceAccount as AccountRow;
use crate::store::users::User as UserRow;

/// The admin service behind its gate: every call needs an access token with `admin_role`.
pub fn admin_service(
    auth: Arc<Auth>,
    admin_role: String,
    secret_overlap: Duration,
    max_request_bytes: usize,
) -> InterceptedService<AdminServiceServer<AdminApi>, AdminGate> {
    let api = AdminApi {
        auth: auth.clone(),
        secret_overlap,
    };
    InterceptedService::new(
        AdminServiceServer::new(api).max_decoding_message_size(max_request_bytes),
        AdminGate { auth, admin_role },
    )
}

/// Checks the caller's token with the server's own verifier and revocation view, and its
/// roles; the claims travel on to the handler, which names the actor in its audit line.
#[derive(Clone)]
pub struct AdminGate {
    auth: Arc<Auth>,
    admin_role: String,
}

impl tonic::service::Interceptor for AdminGate {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let token = bearer(request.metadata())?;
        let claims = self.auth.validate(token, "")?;
        if !claims.roles.contains(&self.admin_role) {
            tracing::info!(
                event = "admin_refused",
                actor = %claims.sub,
                "admin call refused: the token lacks the admin role"
            );
            return Err(AuthError::RoleRequired(self.admin_role.clone()).into());
        }
        request.extensions_mut().insert(claims);
        Ok(request)
    }
}

/// The handlers.
#[derive(Clone)]
pub struct AdminApi {
    auth: Arc<Auth>,
    secret_overlap: Duration,
}

/// Who made the call (the gate put their claims there).
fn actor<T>(request: &Request<T>) -> String {
    request
        .extensions()
        .get::<Claims>()
        .map(|c| format!("{} ({})", c.username, c.sub))
        .unwrap_or_default()
}

fn audit(actor: &str, action: &'static str, target: &str) {
    tracing::info!(event = "admin", action, actor, target, "admin action");
}

fn user_ref(r: Option<user_ref::User>) -> Result<UserRef, AuthError> {
    match r {
        Some(user_ref::User::UserId(id)) => Ok(UserRef::Id(id)),
        Some(user_ref::User::Username(name)) => Ok(UserRef::Name(name)),
        None => Err(AuthError::InvalidInput(
            "name the user by user_id or username".into(),
        )),
    }
}

fn user(u: &UserRow) -> User {
    User {
        user_id: u.id.to_string(),
        username: u.username.clone(),
        roles: roles::from_stored(&u.roles),
        disabled: u.disabled,
        created_at: u.created_at.timestamp(),
    }
}

fn account(a: &AccountRow) -> ServiceAccount {
    ServiceAccount {
        client_id: a.client_id.to_string(),
        name: a.name.clone(),
        roles: roles::from_stored(&a.roles),
        disabled: a.disabled,
        created_at: a.created_at.timestamp(),
    }
}

fn secret(s: accounts::NewSecret) -> ServiceAccountSecret {
    ServiceAccountSecret {
        client_id: s.account.client_id.to_string(),
        client_secret: s.secret,
        account: Some(account(&s.account)),
    }
}

impl AdminApi {
    /// The user after a change, read back.
    async fn reread(&self, u: &UserRow) -> Result<Response<User>, Status> {
        let u = users::get_user(self.auth.store(), &UserRef::Id(u.id.to_string())).await?;
        Ok(Response::new(user(&u)))
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn create_user(
        &self,
        request: Request<CreateUserRequest>,
    ) -> Result<Response<User>, Status> {
        let actor = actor(&request);
        let r = request.into_inner();
        let id = auth::create_user(
            self.auth.store(),
            self.auth.hasher(),
            &self.auth.policy().password,
            &r.username,
            r.password,
            r.roles,
        )
        .await?;
        audit(&actor, "create_user", &id.to_string());
        let u = users::get_user(self.auth.store(), &UserRef::Id(id.to_string())).await?;
        Ok(Response::new(user(&u)))
    }

    async fn get_user(
        &self,
        request: Request<crate::proto::UserRef>,
    ) -> Result<Response<User>, Status> {
        let who = user_ref(request.into_inner().user)?;
        let u = users::get_user(self.auth.store(), &who).await?;
        Ok(Response::new(user(&u)))
    }

    async fn list_users(
        &self,
        request: Request<ListUsersRequest>,
    ) -> Result<Response<ListUsersResponse>, Status> {
        let r = request.into_inner();
        let size = users::page_size(r.page_size)?;
        let (page, next) = users::list_users(self.auth.store(), size, &r.page_token).await?;
        Ok(Response::new(ListUsersResponse {
            users: page.iter().map(user).collect(),
            next_page_token: next,
        }))
    }

    async fn disable_user(
        &self,
        request: Request<crate::proto::UserRef>,
    ) -> Result<Response<User>, Status> {
        self.set_disabled(request, true).await
    }

    async fn enable_user(
        &self,
        request: Request<crate::proto::UserRef>,
    ) -> Result<Response<User>, Status> {
        self.set_disabled(request, false).await
    }

    async fn delete_user(
        &self,
        request: Request<crate::proto::UserRef>,
    ) -> Result<Response<DeleteUserResponse>, Status> {
        let actor = actor(&request);
        let who = user_ref(request.into_inner().user)?;
        let (u, ended) = users::delete_user(self.auth.store(), &who).await?;
        self.auth.reload_revocations().await?;
        audit(&actor, "delete_user", &u.id.to_string());
        Ok(Response::new(DeleteUserResponse {
            sessions_revoked: i64::try_from(ended).unwrap_or(i64::MAX),
        }))
    }

    async fn set_roles(&self, request: Request<SetRolesRequest>) -> Result<Response<User>, Status> {
        let actor = actor(&request);
        let r = request.into_inner();
        let who = user_ref(r.user.and_then(|u| u.user))?;
        let u = users::set_roles(self.auth.store(), &who, r.roles).await?;
        audit(&actor, "set_roles", &u.id.to_string());
        Ok(Response::new(user(&u)))
    }

    async fn set_password(
        &self,
        request: Request<SetPasswordRequest>,
    ) -> Result<Response<User>, Status> {
        let actor = actor(&request);
        let r = request.into_inner();
        let who = user_ref(r.user.and_then(|u| u.user))?;
        let (u, _) = users::set_password(
            self.auth.store(),
            self.auth.hasher(),
            &self.auth.policy().password,
            &who,
            r.new_password,
            None,
        )
        .await?;
        self.auth.reload_revocations().await?;
        audit(&actor, "set_password", &u.id.to_string());
        self.reread(&u).await
    }

    async fn list_sessions(
        &self,
        request: Request<crate::proto::UserRef>,
    ) -> Result<Response<ListSessionsResponse>, Status> {
        let who = user_ref(request.into_inner().user)?;
        let sessions = users::list_sessions(self.auth.store(), &who).await?;
        Ok(Response::new(ListSessionsResponse {
            sessions: sessions
                .iter()
                .map(|s| Session {
                    session_id: s.id.to_string(),
                    audience: s.audience.clone(),
                    created_at: s.created_at.timestamp(),
                    expires_at: s.expires_at.timestamp(),
                })
                .collect(),
        }))
    }

    async fn revoke_user_sessions(
        &self,
        request: Request<crate::proto::UserRef>,
    ) -> Result<Response<RevokeUserSessionsResponse>, Status> {
        let actor = actor(&request);
        let who = user_ref(request.into_inner().user)?;
        let u = users::get_user(self.auth.store(), &who).await?;
        let ended = self
            .auth
            .store()
            .revoke_user_sessions(u.id, chrono::Utc::now())
            .await
            .map_err(AuthError::from)?;
        crate::metrics::sessions_revoked("admin", ended);
        self.auth.reload_revocations().await?;
        audit(&actor, "revoke_user_sessions", &u.id.to_string());
        Ok(Response::new(RevokeUserSessionsResponse {
            revoked: i64::try_from(ended).unwrap_or(i64::MAX),
        }))
    }

    async fn create_service_account(
        &self,
        request: Request<CreateServiceAccountRequest>,
    ) -> Result<Response<ServiceAccountSecret>, Status> {
        let actor = actor(&request);
        let r = request.into_inner();
        let s = accounts::create_service_account(self.auth.store(), &r.name, r.roles).await?;
        audit(
            &actor,
            "create_service_account",
            &s.account.client_id.to_string(),
        );
        Ok(Response::new(secret(s)))
    }

    async fn list_service_accounts(
        &self,
        request: Request<ListServiceAccountsRequest>,
    ) -> Result<Response<ListServiceAccountsResponse>, Status> {
        let r = request.into_inner();
        let size = users::page_size(r.page_size)?;
        let (page, next) =
            accounts::list_service_accounts(self.auth.store(), size, &r.page_token).await?;
        Ok(Response::new(ListServiceAccountsResponse {
            accounts: page.iter().map(account).collect(),
            next_page_token: next,
        }))
    }

    async fn rotate_service_account_secret(
        &self,
        request: Request<ServiceAccountRef>,
    ) -> Result<Response<ServiceAccountSecret>, Status> {
        let actor = actor(&request);
        let id = client_id(request.into_inner())?;
        let s =
            accounts::rotate_service_account_secret(self.auth.store(), &id, self.secret_overlap)
                .await?;
        audit(&actor, "rotate_service_account_secret", &id);
        Ok(Response::new(secret(s)))
    }

    async fn disable_service_account(
        &self,
        request: Request<ServiceAccountRef>,
    ) -> Result<Response<ServiceAccount>, Status> {
        let actor = actor(&request);
        let id = client_id(request.into_inner())?;
        let a = accounts::set_service_account_disabled(self.auth.store(), &id, true).await?;
        self.auth.reload_revocations().await?;
        audit(&actor, "disable_service_account", &id);
        Ok(Response::new(account(&a)))
    }
}

impl AdminApi {
    async fn set_disabled(
        &self,
        request: Request<crate::proto::UserRef>,
        disabled: bool,
    ) -> Result<Response<User>, Status> {
        let actor = actor(&request);
        let who = user_ref(request.into_inner().user)?;
        let (u, _) = auth::set_user_disabled(self.auth.store(), &who, disabled)
            .await?
            .ok_or(AuthError::UserNotFound)?;
        let name = u.id.to_string();
        self.auth.reload_revocations().await?;
        audit(
            &actor,
            if disabled {
                "disable_user"
            } else {
                "enable_user"
            },
            &name,
        );
        self.reread(&u).await
    }
}

/// A client id as given (a UUID); anything else is not a client authd made.
fn client_id(r: ServiceAccountRef) -> Result<String, AuthError> {
    match uuid::Uuid::parse_str(&r.client_id) {
        Ok(id) => Ok(id.to_string()),
        Err(_) => Err(AuthError::InvalidInput("client_id is not a UUID".into())),
    }
}
