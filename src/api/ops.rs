//! `/health`, `/ready` and `/metrics`: for load balancers, orchestrators and Prometheus.

use std::sync::Arc;

use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{Enum, Object, OpenApi};

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
    /// Which cache requests use: `redis`, `in-process` (no `REDIS_URL`), or `bypassed` (Redis is
    /// configured but not answering: requests are served from SurrealDB until it is back).
    pub cache: CacheMode,
}

/// Which cache requests use now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "kebab-case")]
pub enum CacheMode {
    Redis,
    InProcess,
    Bypassed,
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

    /// Readiness: SurrealDB answers, and which cache is in use
    ///
    /// 503 (a problem document) while SurrealDB does not answer. Redis not answering does not make
    /// the instance unready: it serves from SurrealDB (`cache: bypassed`) until Redis is back, so a
    /// Redis outage does not take every instance out of the load balancer.
    #[oai(path = "/ready", method = "get", operation_id = "ready")]
    async fn ready(&self) -> ApiResult<Json<Readiness>, Problems<0>> {
        let probe = self.dependencies.probe().await;
        if !probe.database {
            return Err(Error::Unavailable("SurrealDB not reachable".into()).into());
        }
        let cache = match (probe.shared_cache, probe.cache) {
            (false, _) => CacheMode::InProcess,
            (true, true) => CacheMode::Redis,
            (true, false) => CacheMode::Bypassed,
        };
        Ok(Json(Readiness {
            database: "ok".into(),
            cache,
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
