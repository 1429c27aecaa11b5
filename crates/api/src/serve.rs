//! Serving the router on a TCP listener, with the client address available to the
//! failed-authentication limiter.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::{router, AppState};

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
