//! `/api/v1/products/{id}/variants`: a product's variants, added, changed and archived by admins.

use std::sync::Arc;

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::body::Body;
use crate::api::problem::statuses::*;
use crate::api::problem::{ApiResult, Problems};
use crate::api::session_http::Auth;
use crate::api::v1::products::{Money, OptionValues, VariantInput, VariantView, product_id};
use crate::api::{ApiTags, NoContent};
use crate::services::catalog::{Catalog, VariantPatch};

/// Fields of a variant to change; those left out stay as they are.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct VariantUpdate {
    #[oai(skip_serializing_if_is_none)]
    pub sku: Option<String>,
    /// A value for every option of the product; no other live variant may have the same ones.
    #[oai(skip_serializing_if_is_none)]
    pub option_values: Option<OptionValues>,
    /// Its own price, in the product's currency.
    #[oai(skip_serializing_if_is_none)]
    pub price: Option<Money>,
    /// True: the variant costs the product's price again (`price` must then be left out).
    #[oai(skip_serializing_if_is_none)]
    pub clear_price: Option<bool>,
    #[oai(
        skip_serializing_if_is_none,
        validator(minimum(value = "0"), maximum(value = "1000000000"))
    )]
    pub stock: Option<i64>,
}

impl Example for VariantUpdate {
    fn example() -> Self {
        Self {
            sku: None,
            option_values: None,
            price: Some(Money::new(1899, "GBP")),
            clear_price: None,
            stock: Some(30),
        }
    }
}

#[derive(ApiResponse)]
pub enum VariantCreated {
    /// Created.
    #[oai(status = 201)]
    Created(Json<VariantView>),
}

pub struct VariantsApi {
    pub catalog: Arc<Catalog>,
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Products")]
impl VariantsApi {
    /// Add a variant to a product (admin)
    ///
    /// Its option values must be values of the product's options, and differ from every other
    /// variant on sale; its SKU must be new to the store (422 naming the field otherwise). At most
    /// 100 variants per product.
    #[oai(
        path = "/products/:id/variants",
        method = "post",
        operation_id = "addVariant"
    )]
    async fn add(
        &self,
        auth: Auth,
        id: Path<i64>,
        body: Body<VariantInput>,
    ) -> ApiResult<VariantCreated, Problems<{ BODY | PARAMS | ADMIN | NOT_FOUND }>> {
        let admin = auth.admin()?;
        let (product, variant) = self
            .catalog
            .add_variant(&admin, product_id(id.0)?, body.0.into())
            .await?;
        Ok(VariantCreated::Created(Json(VariantView::of(
            &product, &variant,
        ))))
    }

    /// Change a variant (admin)
    #[oai(
        path = "/products/:id/variants/:variant_id",
        method = "patch",
        operation_id = "updateVariant"
    )]
    async fn update(
        &self,
        auth: Auth,
        id: Path<i64>,
        variant_id: Path<i64>,
        body: Body<VariantUpdate>,
    ) -> ApiResult<Json<VariantView>, Problems<{ BODY | PARAMS | ADMIN | NOT_FOUND }>> {
        let admin = auth.admin()?;
        let b = body.0;
        let clear_price = b.clear_price.unwrap_or(false);
        if clear_price && b.price.is_some() {
            return Err(crate::error::Error::validation(
                "clear_price",
                "give either price or clear_price",
            )
            .into());
        }
        let patch = VariantPatch {
            sku: b.sku,
            option_values: b.option_values.map(|v| v.into_iter().collect()),
            price: if clear_price {
                Some(None)
            } else {
                b.price.map(|m| Some((m.amount, m.currency)))
            },
            stock: b.stock,
        };
        let (product, variant) = self
            .catalog
            .update_variant(
                &admin,
                product_id(id.0)?,
                crate::api::v1::products::variant_id(variant_id.0)?,
                patch,
            )
            .await?;
        Ok(Json(VariantView::of(&product, &variant)))
    }

    /// Archive a variant (admin)
    ///
    /// It is no longer sold; orders that hold it still show it. A product keeps one variant on
    /// sale at least: archiving the last is refused (409 `last_variant`; archive the product).
    #[oai(
        path = "/products/:id/variants/:variant_id",
        method = "delete",
        operation_id = "archiveVariant"
    )]
    async fn archive(
        &self,
        auth: Auth,
        id: Path<i64>,
        variant_id: Path<i64>,
    ) -> ApiResult<NoContent, Problems<{ PARAMS | ADMIN | NOT_FOUND | CONFLICT }>> {
        let admin = auth.admin()?;
        self.catalog
            .archive_variant(
                &admin,
                product_id(id.0)?,
                crate::api::v1::products::variant_id(variant_id.0)?,
            )
            .await?;
        Ok(NoContent::Done)
    }
}
