//! Serving a node's Prometheus metrics over HTTP.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
};

use axum::{Router, extract::State, http::header, response::IntoResponse, routing::get};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

/// The metrics of one node: the registry the HTTP endpoint encodes, and the
/// recorders that fill it.
pub(crate) struct NodeMetrics {
    pub(crate) registry: Arc<Mutex<Registry>>,
    pub(crate) libp2p: libp2p::metrics::Metrics,
    pub(crate) punchport: punchport::metrics::Metrics,
}

impl NodeMetrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        let libp2p = libp2p::metrics::Metrics::new(&mut registry);
        let punchport = punchport::metrics::Metrics::new(&mut registry);
        Self {
            registry: Arc::new(Mutex::new(registry)),
            libp2p,
            punchport,
        }
    }
}

/// Binds `addr` and serves `GET /metrics` from `registry` in a task;
/// returns the bound address.
pub(crate) async fn serve(
    addr: SocketAddr,
    registry: Arc<Mutex<Registry>>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(registry);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(%error, "the metrics endpoint stopped");
        }
    });
    Ok(bound)
}

async fn metrics(State(registry): State<Arc<Mutex<Registry>>>) -> impl IntoResponse {
    let mut text = String::new();
    let encoded = {
        let registry = registry.lock().unwrap_or_else(PoisonError::into_inner);
        prometheus_client::encoding::text::encode(&mut text, &registry)
    };
    match encoded {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
