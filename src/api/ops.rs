//! `/health`, `/ready` and `/metrics`: for load balancers, orchestrators and Prometheus.

use std::sync::Arc;

use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{Object, OpenApi};

use crate::api::ApiTags;
use crate::api::problem::{ApiResult, Problems};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::services::readiness::Dependencies;

#[derive(Debug, Object)]
pub struct Health {
    /// Always `ok` when the process answers.
    pub status: String,
    /// The version of this build.
    pub version: String,
}

#[derive(Debug, Object)]
pub struct Readiness {
    /// `ok` when SurrealDB answered.
    pub database: String,
    /// `redis` or `in-process`.
    pub cache: String,
}

pub struct OpsApi {
    pub dependencies: Arc<Dependencies>,
    pub metrics: Arc<Metrics>,
}

#[OpenApi(tag = "ApiTags::Operations")]
impl OpsApi {
    /// Liveness: the process is up
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self) -> Json<Health> {
        Json(Health {
            status: "ok".into(),
            version: crate::VERSION.into(),
        })
    }

    /// Readiness: SurrealDB and the cache answer
    ///
    /// 503 (a problem document naming what is down) while either does not.
    #[oai(path = "/ready", method = "get", operation_id = "ready")]
    async fn ready(&self) -> ApiResult<Json<Readiness>, Problems<0>> {
        let probe = self.dependencies.probe().await;
        let down: Vec<&str> = [
            (!probe.database).then_some("SurrealDB"),
            (!probe.cache).then_some("Redis"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !down.is_empty() {
            return Err(Error::Unavailable(format!("{} not reachable", down.join(" and "))).into());
        }
        Ok(Json(Readiness {
            database: "ok".into(),
            cache: if probe.shared_cache {
                "redis"
            } else {
                "in-process"
            }
            .into(),
        }))
    }

    /// Prometheus metrics
    ///
    /// Requests by route and status, latency histograms, cache hits and misses, Redis errors.
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self) -> PlainText<String> {
        PlainText(self.metrics.render())
    }
}
