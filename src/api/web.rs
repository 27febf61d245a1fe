//! Which services a browser may call over gRPC-Web. The token API always; the admin API and
//! reflection only when a setting says so, since a browser page is the easiest place for
//! an admin token to leak from and reflection maps the whole surface for a script.
use std::convert::Infallible;
use std::task::{Context, Poll};

use futures_util::future::{Either, Ready, ready};
use http::{HeaderValue, Request, Response, header};
use tonic::body::Body;
use tonic::server::NamedService;
use tonic_web::{GrpcWebLayer, GrpcWebService};
use tower::{Layer, Service};

/// `inner` served over native gRPC and, if `web` is set, over gRPC-Web; a gRPC-Web call
/// to it otherwise gets `UNIMPLEMENTED`, as a gRPC-Web client can read it.
pub fn served<S>(inner: S, web: bool) -> WebExposed<S> {
    WebExposed {
        inner: GrpcWebLayer::new().layer(inner),
        web,
    }
}

/// A service reachable over gRPC-Web or not; see [`served`].
#[derive(Clone, Debug)]
pub struct WebExposed<S> {
    inner: GrpcWebService<S>,
    web: bool,
}

impl<S: NamedService> NamedService for WebExposed<S> {
    const NAME: &'static str = S::NAME;
}

/// The four content types tonic-web translates (the spec's, exactly).
fn grpc_web_content_type(req: &Request<Body>) -> Option<&HeaderValue> {
    req.headers().get(header::CONTENT_TYPE).filter(|ct| {
        matches!(
            ct.as_bytes(),
            b"application/grpc-web"
                | b"application/grpc-web+proto"
                | b"application/grpc-web-text"
                | b"application/grpc-web-text+proto"
        )
    })
}

impl<S> Service<Request<Body>> for WebExposed<S>
where
    GrpcWebService<S>: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Either<
        <GrpcWebService<S> as Service<Request<Body>>>::Future,
        Ready<Result<Response<Body>, Infallible>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        match grpc_web_content_type(&req) {
            Some(_) if !self.web => {
                // A trailers-only reply: in gRPC-Web the status then travels in the headers.
                // Its content type follows `accept`, as tonic-web's own replies do.
                let text = req
                    .headers()
                    .get(header::ACCEPT)
                    .is_some_and(|a| a.as_bytes().starts_with(b"application/grpc-web-text"));
                let content_type = HeaderValue::from_static(if text {
                    "application/grpc-web-text+proto"
                } else {
                    "application/grpc-web+proto"
                });
                let mut res = tonic::Status::unimplemented(
                    "this service is not served over gRPC-Web; use native gRPC",
                )
                .into_http::<Body>();
                res.headers_mut().insert(header::CONTENT_TYPE, content_type);
                Either::Right(ready(Ok(res)))
            }
            _ => Either::Left(self.inner.call(req)),
        }
    }
}
