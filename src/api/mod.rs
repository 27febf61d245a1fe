//! gRPC handlers: proto in, domain call, proto out. Thin on purpose.
use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::auth::{self, Auth};
use crate::proto::auth_service_server::AuthService;
use crate::proto::{
    GetJwksRequest, GetJwksResponse, IssueRequest, RefreshRequest, RegisterRequest,
    RegisterResponse, RevokeRequest, RevokeResponse, TokenPair, ValidateRequest, ValidateResponse,
};

mod peer;
mod status;

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

    async fn get_jwks(
        &self,
        _request: Request<GetJwksRequest>,
    ) -> Result<Response<GetJwksResponse>, Status> {
        Ok(Response::new(GetJwksResponse {
            jwks_json: self.auth.jwks_json(),
        }))
    }
}
