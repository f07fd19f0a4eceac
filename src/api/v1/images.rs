//! `/api/v1/products/{id}/images`: product images, uploaded and removed by admins; and `/media/*`,
//! where the stored files are served.

use std::sync::Arc;

use poem::http::{StatusCode, header};
use poem::web::Path as PathParam;
use poem::{Response, handler};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::multipart::Upload;
use poem_openapi::{ApiResponse, Multipart, OpenApi};

use crate::api::problem::statuses::*;
use crate::api::problem::{ApiResult, Problems};
use crate::api::session_http::Auth;
use crate::api::v1::products::{ProductView, product_id};
use crate::api::{ApiTags, NoContent};
use crate::error::Error;
use crate::services::catalog::Catalog;

/// An image to add: the file (JPEG, PNG or WebP, up to 5 MiB, known by its content, not its name)
/// and a text for readers who cannot see it.
#[derive(Debug, Multipart)]
pub struct ImageUpload {
    pub file: Upload,
    /// Up to 300 characters.
    pub alt: Option<String>,
}

#[derive(ApiResponse)]
pub enum ImageAdded {
    /// Added last: the product with its images.
    #[oai(status = 201)]
    Added(Json<ProductView>),
}

pub struct ImagesApi {
    pub catalog: Arc<Catalog>,
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Products")]
impl ImagesApi {
    /// Add an image to a product (admin)
    ///
    /// `multipart/form-data` with `file` and an optional `alt`. 422 naming `file` when it is not a
    /// JPEG, PNG or WebP image; 409 `too_many_images` past 10; 413 past 5 MiB.
    #[oai(
        path = "/products/:id/images",
        method = "post",
        operation_id = "addProductImage"
    )]
    async fn add(
        &self,
        auth: Auth,
        id: Path<i64>,
        upload: ImageUpload,
    ) -> ApiResult<ImageAdded, Problems<{ BODY | PARAMS | ADMIN | NOT_FOUND | CONFLICT }>> {
        let admin = auth.admin()?;
        let id = product_id(id.0)?;
        let bytes = upload
            .file
            .into_vec()
            .await
            .map_err(|_| Error::validation("file", "could not be read"))?;
        let product = self
            .catalog
            .add_image(&admin, id, bytes, upload.alt.as_deref().unwrap_or(""))
            .await?;
        Ok(ImageAdded::Added(Json(product.into())))
    }

    /// Remove an image from a product (admin)
    #[oai(
        path = "/products/:id/images/:image_id",
        method = "delete",
        operation_id = "removeProductImage"
    )]
    async fn remove(
        &self,
        auth: Auth,
        id: Path<i64>,
        image_id: Path<String>,
    ) -> ApiResult<NoContent, Problems<{ PARAMS | ADMIN | NOT_FOUND }>> {
        let admin = auth.admin()?;
        self.catalog
            .remove_image(&admin, product_id(id.0)?, &image_id.0)
            .await?;
        Ok(NoContent::Done)
    }
}

/// `GET /media/{file}`: a stored image, with a content type from its name and cached for good (a
/// file's name never changes hands: a new upload gets a new one).
#[handler]
pub async fn serve_media(
    PathParam(file): PathParam<String>,
    catalog: poem::web::Data<&Arc<Catalog>>,
) -> poem::Result<Response> {
    match catalog.media_file(&file).await {
        Ok(Some((bytes, content_type))) => Ok(Response::builder()
            .content_type(content_type)
            .header(header::CACHE_CONTROL, "public, max-age=31536000, immutable")
            .body(bytes)),
        // A bare 404: the problems middleware answers it as every unknown path.
        Ok(None) => Err(poem::Error::from_status(StatusCode::NOT_FOUND)),
        Err(e) => Err(Problems::<0>::from(e).into()),
    }
}
