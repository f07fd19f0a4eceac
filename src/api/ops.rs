//! `/health` and `/ready`, for load balancers and orchestrators, and `/` pointing people at the docs.
//! (`/metrics` has a port of its own: `app`.)

use std::sync::Arc;

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::ApiTags;
use crate::api::problem::{ApiResult, Problems};
use crate::error::Error;
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
}

/// `GET /`: where a person who opened the server's address should go.
#[derive(ApiResponse)]
pub enum ToTheDocs {
    /// See `/docs` (Swagger UI) or `/openapi.json`.
    #[oai(status = 308)]
    Redirect(#[oai(header = "Location")] String),
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
            // Which way requests go meanwhile: with Redis failing, the breaker sends them straight
            // to SurrealDB, so they still succeed (slower).
            let meanwhile = if probe.database && probe.cache_bypassed {
                "; the cache is bypassed: requests are served from SurrealDB"
            } else {
                ""
            };
            return Err(Error::Unavailable(format!(
                "{} not reachable{meanwhile}",
                down.join(" and ")
            ))
            .into());
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

    /// The service's front door: a redirect to the API docs (not itself part of the API)
    #[oai(path = "/", method = "get", hidden)]
    async fn root(&self) -> ToTheDocs {
        ToTheDocs::Redirect("/docs".into())
    }
}
