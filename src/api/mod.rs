//! gRPC handlers: proto in, domain call, proto out. Thin on purpose.
use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::auth::{self, Auth};
use crate::proto::auth_service_server::AuthService;
use crate::proto::{
    ChangePasswordRequest, GetJwksRequest, GetJwksResponse, IssueRequest, IssueServiceTokenRequest,
    RefreshRequest, RegisterRequest, RegisterResponse, RevokeRequest, RevokeResponse, ServiceToken,
    TokenPair, ValidateRequest, ValidateResponse,
};

mod admin;
mod peer;
mod status;
pub mod web;

pub use admin::admin_service;

/// The access token of `authorization: Bearer <token>` (the scheme in any case).
pub(crate) fn bearer(metadata: &tonic::metadata::MetadataMap) -> Result<&str, auth::AuthError> {
    let value = metadata
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or(auth::AuthError::TokenMissing)?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(auth::AuthError::TokenMissing),
    }
}

/// The `authd.v1.AuthService` implementation.
#[derive(Debug, Clone)]
pub struct AuthApi {
    auth: Arc<Auth>,
    trusted_proxies: Arc<[ipnet::IpNet]>,
}

impl AuthApi {
    /// `trusted_proxies`: peers whose `X-Forwarded-For` names the real client.
    pub fn new(auth: Arc<Auth>, trusted_proxies: Vec<ipnet::IpNet>) -> Self {
        Self {
            auth,
            trusted_proxies: trusted_proxies.into(),
        }
    }
}

fn pair(p: auth::TokenPair) -> TokenPair {
    TokenPair {
        access_token: p.access_token,
        refresh_token: p.refresh_token,
        token_type: "Bearer".into(),
        expires_in: p.expires_in,
        refresh_expires_in: p.refresh_expires_in,
    }
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let r = request.into_inner();
        let id = self.auth.register(&r.username, r.password).await?;
        Ok(Response::new(RegisterResponse {
            user_id: id.to_string(),
        }))
    }

    async fn issue(&self, request: Request<IssueRequest>) -> Result<Response<TokenPair>, Status> {
        let from = peer::client_ip(&request, &self.trusted_proxies);
        let r = request.into_inner();
        let p = self
            .auth
            .issue(&r.username, r.password, &r.audience, from)
            .await?;
        Ok(Response::new(pair(p)))
    }

    async fn validate(
        &self,
        request: Request<ValidateRequest>,
    ) -> Result<Response<ValidateResponse>, Status> {
        let r = request.into_inner();
        let claims = self.auth.validate(&r.token, &r.audience)?;
        Ok(Response::new(ValidateResponse {
            claims: Some(claims.into()),
        }))
    }

    async fn refresh(
        &self,
        request: Request<RefreshRequest>,
    ) -> Result<Response<TokenPair>, Status> {
        let p = self
            .auth
            .refresh(&request.into_inner().refresh_token)
            .await?;
        Ok(Response::new(pair(p)))
    }

    async fn revoke(
        &self,
        request: Request<RevokeRequest>,
    ) -> Result<Response<RevokeResponse>, Status> {
        self.auth
            .revoke(&request.into_inner().refresh_token)
            .await?;
        Ok(Response::new(RevokeResponse {}))
    }

    async fn issue_service_token(
        &self,
        request: Request<IssueServiceTokenRequest>,
    ) -> Result<Response<ServiceToken>, Status> {
        let from = peer::client_ip(&request, &self.trusted_proxies);
        let r = request.into_inner();
        let t = self
            .auth
            .issue_service_token(&r.client_id, &r.client_secret, &r.audience, from)
            .await?;
        Ok(Response::new(ServiceToken {
            access_token: t.access_token,
            token_type: "Bearer".into(),
            expires_in: t.expires_in,
        }))
    }

    async fn change_password(
        &self,
        request: Request<ChangePasswordRequest>,
    ) -> Result<Response<TokenPair>, Status> {
        let from = peer::client_ip(&request, &self.trusted_proxies);
        let token = bearer(request.metadata())?.to_owned();
        let r = request.into_inner();
        let p = self
            .auth
            .change_password(&token, r.current_password, r.new_password, from)
            .await?;
        Ok(Response::new(pair(p)))
    }

    async fn get_jwks(
        &self,
        _request: Request<GetJwksRequest>,
    ) -> Result<Response<GetJwksResponse>, Status> {
        Ok(Response::new(GetJwksResponse {
            jwks_json: self.auth.jwks_json(),
        }))
    }
}
