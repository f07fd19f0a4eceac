//! Product images: uploaded by an admin, checked by their content (JPEG, PNG or WebP), stored in
//! the media store under a name of the service's making, and listed on the product in order.

use crate::auth::Admin;
use crate::domain::{MAX_IMAGES, Product, ProductId, ProductImage, bounded_text};
use crate::error::{Error, Result};
use crate::store::products::ImageAdd;

use super::Catalog;

/// Largest image accepted (the upload route's body limit is a little above it, for the form).
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;

/// The kinds accepted, by their first bytes, with the extension their file gets.
fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("jpg")
    } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some("png")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("webp")
    } else {
        None
    }
}

/// The content type of a stored file, from the extension the service gave it; `None` for a name
/// the service never makes (`<32 hex digits>.<jpg|png|webp>`).
pub fn media_content_type(file: &str) -> Option<&'static str> {
    let (stem, ext) = file.split_once('.')?;
    if stem.len() != 32
        || !stem
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return None;
    }
    match ext {
        "jpg" => Some("image/jpeg"),
        "png" => Some("image/png"),
        "webp" => Some("image/webp"),
        _ => None,
    }
}

/// The media store (a bucket, a disk) failing is the store being unavailable, not the request's fault:
/// 503, with the cause in the log.
fn media_unavailable(err: anyhow::Error) -> Error {
    tracing::error!(error = %format!("{err:#}"), "the media store failed");
    Error::Unavailable("the media store did not answer".into())
}

impl Catalog {
    #[tracing::instrument(skip_all, fields(admin.id = %admin.user_id(), product.id = %id))]
    pub async fn add_image(
        &self,
        admin: &Admin,
        id: ProductId,
        bytes: Vec<u8>,
        alt: &str,
    ) -> Result<Product> {
        if bytes.len() > MAX_IMAGE_BYTES {
            return Err(Error::validation(
                "file",
                format!("must be at most {} MiB", MAX_IMAGE_BYTES / (1024 * 1024)),
            ));
        }
        let ext = sniff(&bytes)
            .ok_or_else(|| Error::validation("file", "must be a JPEG, PNG or WebP image"))?;
        let alt = bounded_text("alt", alt, 0, 300)?;
        let uuid = uuid::Uuid::new_v4().simple().to_string();
        let image = ProductImage {
            id: uuid.clone(),
            file: format!("{uuid}.{ext}"),
            alt,
        };
        // The file first: a product never lists an image that is not there. If the product then
        // refuses it, the file goes again.
        self.media
            .put(&image.file, bytes)
            .await
            .map_err(media_unavailable)?;
        let added = self.store.add_product_image(id, &image).await;
        let refused = match added {
            Ok(ImageAdd::Added) => None,
            Ok(ImageAdd::NoProduct) => Some(Error::NotFound("product")),
            Ok(ImageAdd::Full) => Some(Error::Conflict {
                code: "too_many_images",
                message: format!("a product holds at most {MAX_IMAGES} images"),
            }),
            Err(e) => Some(e.into()),
        };
        if let Some(err) = refused {
            if let Err(e) = self.media.delete(&image.file).await {
                tracing::warn!(error = %e, file = %image.file, "deleting a refused upload");
            }
            return Err(err);
        }
        self.invalidate().await;
        self.product(id).await
    }

    #[tracing::instrument(skip_all, fields(admin.id = %admin.user_id(), product.id = %id))]
    pub async fn remove_image(&self, admin: &Admin, id: ProductId, image_id: &str) -> Result<()> {
        let file = self
            .store
            .remove_product_image(id, image_id)
            .await?
            .ok_or(Error::NotFound("image"))?;
        self.invalidate().await;
        // The product no longer lists it; a file left behind costs space, not correctness.
        if let Err(e) = self.media.delete(&file).await {
            tracing::warn!(error = %e, %file, "deleting a removed image's file");
        }
        Ok(())
    }

    /// A stored file's bytes and content type, for `/media/{file}`; `None` for anything else.
    pub async fn media_file(&self, file: &str) -> Result<Option<(Vec<u8>, &'static str)>> {
        let Some(content_type) = media_content_type(file) else {
            return Ok(None);
        };
        let bytes = self.media.get(file).await.map_err(media_unavailable)?;
        Ok(bytes.map(|bytes| (bytes, content_type)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_known_by_their_first_bytes() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Some("jpg"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some("png"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("webp"));
        for bad in [
            &b""[..],
            b"GIF89a",
            b"<svg>",
            b"RIFF\0\0\0\0WAVE",
            b"\x89PNG",
        ] {
            assert_eq!(sniff(bad), None);
        }
    }

    #[test]
    fn only_names_the_service_makes_are_served() {
        let name = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            media_content_type(&format!("{name}.png")),
            Some("image/png")
        );
        for bad in [
            format!("{name}.svg"),
            format!("{name}.PNG"),
            "../etc/passwd".to_string(),
            format!("{}.png", name.to_uppercase()),
            format!("{name}.png.png"),
            "x.png".to_string(),
        ] {
            assert_eq!(media_content_type(&bad), None, "{bad}");
        }
    }
}
