//! A traffic listener: accepts redirected connections and copies bytes to their original
//! destination until both sides are done, then drains on shutdown.

use std::sync::Arc;
use std::time::Duration;

use socket2::SockRef;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::destination::{OwnPorts, destination};
use crate::orig_dst::original_destination;
use crate::{Direction, ProxyMetrics};

/// What every connection of a listener shares.
#[derive(Debug, Clone)]
pub struct Forwarder {
    /// Which listener.
    pub direction: Direction,
    /// The proxy's listener ports, never forwarded to.
    pub own: OwnPorts,
    /// How long connecting to a destination may take.
    pub connect_timeout: Duration,
    /// The counters.
    pub metrics: Arc<ProxyMetrics>,
}

impl Forwarder {
    /// Accepts until `stop` turns true, then closes the listener and gives the open
    /// connections `grace` to finish before cutting them.
    pub async fn serve(
        self,
        listener: TcpListener,
        mut stop: watch::Receiver<bool>,
        grace: Duration,
    ) {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        connections.spawn(self.clone().forward(stream));
                    }
                    Err(error) => {
                        // Out of descriptors, most likely: back off instead of spinning.
                        tracing::warn!(direction = %self.direction, %error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                () = crate::run::stopped(&mut stop) => break,
            }
        }
        drop(listener);
        let open = connections.len();
        tracing::info!(direction = %self.direction, open, "listener closed, draining");
        let drained = tokio::time::timeout(grace, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                direction = %self.direction,
                cut = connections.len(),
                "grace period over, closing the connections still open"
            );
            connections.shutdown().await;
        }
    }

    async fn forward(self, client: TcpStream) {
        let direction = self.direction;
        self.metrics.opened(direction);
        let peer = client.peer_addr().ok();
        match self.connect(&client).await {
            Some(server) => self.copy(client, server).await,
            // Reset rather than close: the client learns at once that nothing is there,
            // as it would without the proxy.
            None => {
                let _ = SockRef::from(&client).set_linger(Some(Duration::ZERO));
            }
        }
        tracing::debug!(%direction, ?peer, "connection closed");
        self.metrics.closed(direction);
    }

    async fn connect(&self, client: &TcpStream) -> Option<TcpStream> {
        let direction = self.direction;
        let local = client.local_addr().ok()?;
        let target = match destination(original_destination(client), local, self.own) {
            Ok(target) => target,
            Err(refusal) => {
                tracing::info!(%direction, %local, reason = refusal.as_str(), "connection refused");
                self.metrics.refused(direction, refusal);
                return None;
            }
        };
        match tokio::time::timeout(self.connect_timeout, TcpStream::connect(target)).await {
            Ok(Ok(server)) => Some(server),
            Ok(Err(error)) => {
                tracing::debug!(%direction, %target, %error, "connect failed");
                self.metrics.connect_error(direction);
                None
            }
            Err(_) => {
                tracing::debug!(%direction, %target, "connect timed out");
                self.metrics.connect_error(direction);
                None
            }
        }
    }

    async fn copy(&self, client: TcpStream, server: TcpStream) {
        // Request/response traffic must not wait for Nagle.
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let copied = crate::splice::bidirectional(
            &client,
            &server,
            self.metrics.client_bytes(self.direction),
            self.metrics.server_bytes(self.direction),
        )
        .await;
        if let Err(error) = copied {
            tracing::debug!(direction = %self.direction, %error, "connection ended with an error");
        }
    }
}
