//! The proxy's Prometheus metrics.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::{Direction, Refusal};

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RefusalLabels {
    direction: &'static str,
    reason: &'static str,
}

/// Counters by direction (`inbound`, `outbound`).
#[derive(Debug, Clone, Default)]
pub struct ProxyMetrics {
    opened: Family<DirectionLabels, Counter>,
    closed: Family<DirectionLabels, Counter>,
    client_bytes: Family<DirectionLabels, Counter>,
    server_bytes: Family<DirectionLabels, Counter>,
    connect_errors: Family<DirectionLabels, Counter>,
    refused: Family<RefusalLabels, Counter>,
}

fn labels(direction: Direction) -> DirectionLabels {
    DirectionLabels {
        direction: direction.as_str(),
    }
}

impl ProxyMetrics {
    /// The metrics, registered in `registry` with the `sparrow_proxy` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let registry = registry.sub_registry_with_prefix("sparrow_proxy");
        let counters = [
            (
                "tcp_connections_opened",
                "Connections accepted",
                &metrics.opened,
            ),
            (
                "tcp_connections_closed",
                "Connections finished",
                &metrics.closed,
            ),
            (
                "tcp_client_bytes",
                "Bytes the clients sent",
                &metrics.client_bytes,
            ),
            (
                "tcp_server_bytes",
                "Bytes the servers sent back",
                &metrics.server_bytes,
            ),
            (
                "tcp_connect_errors",
                "Failed connections to the destination",
                &metrics.connect_errors,
            ),
        ];
        for (name, help, family) in counters {
            registry.register(name, help, family.clone());
        }
        registry.register(
            "tcp_refused",
            "Connections closed unforwarded (loop: to the proxy itself)",
            metrics.refused.clone(),
        );
        metrics
    }

    /// A connection was accepted.
    pub fn opened(&self, direction: Direction) {
        self.opened.get_or_create(&labels(direction)).inc();
    }

    /// A connection is finished.
    pub fn closed(&self, direction: Direction) {
        self.closed.get_or_create(&labels(direction)).inc();
    }

    /// The counter of bytes clients send in `direction` (moved as they are read).
    pub fn client_bytes(&self, direction: Direction) -> Counter {
        self.client_bytes.get_or_create(&labels(direction)).clone()
    }

    /// The counter of bytes servers send back in `direction`.
    pub fn server_bytes(&self, direction: Direction) -> Counter {
        self.server_bytes.get_or_create(&labels(direction)).clone()
    }

    /// Connecting to the destination failed.
    pub fn connect_error(&self, direction: Direction) {
        self.connect_errors.get_or_create(&labels(direction)).inc();
    }

    /// A connection was refused.
    pub fn refused(&self, direction: Direction, refusal: Refusal) {
        self.refused
            .get_or_create(&RefusalLabels {
                direction: direction.as_str(),
                reason: refusal.as_str(),
            })
            .inc();
    }
}
