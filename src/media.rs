//! Where product images live: a directory (the default, on the data volume) or an S3-compatible
//! bucket (`MEDIA_URL=s3://bucket/prefix`: S3, Tigris on Fly, MinIO), behind `object_store`'s one
//! interface. Files are named by the service (`<uuid>.<ext>`), never by the uploader.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};

use crate::config::MediaSettings;

#[derive(Clone)]
pub struct Media {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

impl Media {
    pub fn open(settings: &MediaSettings) -> anyhow::Result<Self> {
        match settings {
            MediaSettings::Directory(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating the media directory {}", dir.display()))?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
                    .with_context(|| format!("opening the media directory {}", dir.display()))?;
                Ok(Self {
                    store: Arc::new(store),
                    prefix: Path::default(),
                })
            }
            MediaSettings::S3 {
                bucket,
                prefix,
                region,
                endpoint,
                access_key_id,
                secret_access_key,
            } => {
                // A bucket that does not answer costs a request seconds, not the library's default
                // of ten retries over up to three minutes.
                let retry = object_store::RetryConfig {
                    max_retries: 2,
                    retry_timeout: Duration::from_secs(5),
                    ..Default::default()
                };
                let client = object_store::ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(2))
                    .with_timeout(Duration::from_secs(15));
                let mut builder = object_store::aws::AmazonS3Builder::new()
                    .with_retry(retry)
                    .with_client_options(client)
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_access_key_id(access_key_id)
                    .with_secret_access_key(secret_access_key.expose());
                if let Some(endpoint) = endpoint {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"));
                }
                let store = builder
                    .build()
                    .context("configuring the S3 bucket (MEDIA_URL)")?;
                Ok(Self {
                    store: Arc::new(store),
                    prefix: Path::from(prefix.as_str()),
                })
            }
        }
    }

    fn path(&self, file: &str) -> Path {
        self.prefix.clone().join(file)
    }

    pub async fn put(&self, file: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.store
            .put(&self.path(file), PutPayload::from(bytes))
            .await
            .with_context(|| format!("storing media file {file}"))?;
        Ok(())
    }

    /// The file's bytes; `None` when there is no such file.
    pub async fn get(&self, file: &str) -> anyhow::Result<Option<Vec<u8>>> {
        match self.store.get(&self.path(file)).await {
            Ok(found) => Ok(Some(found.bytes().await?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading media file {file}")),
        }
    }

    /// Deletes the file; one already gone is fine.
    pub async fn delete(&self, file: &str) -> anyhow::Result<()> {
        match self.store.delete(&self.path(file)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("deleting media file {file}")),
        }
    }
}
