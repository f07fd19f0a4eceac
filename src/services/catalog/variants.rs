//! Options and variants: checking what an admin gives (every refusal names its field), the admin's
//! variant writes, and which variant a request that names only a product means.

use std::collections::HashSet;

use crate::auth::Admin;
use crate::domain::{
    MAX_OPTIONS, MAX_VARIANTS, Price, Product, ProductId, ProductOption, Variant, VariantId,
    bounded_text, parse_currency, parse_stock,
};
use crate::error::{Error, Result};
use crate::store::products::NewVariant;
use crate::store::variants::{VariantChanges, VariantWrite};
use crate::store::{Store, StoreError};

use super::Catalog;

/// Values an option offers at most.
pub const MAX_OPTION_VALUES: usize = 100;

/// An option as given by an admin, unvalidated.
#[derive(Debug, Clone, Default)]
pub struct OptionDraft {
    pub name: String,
    pub values: Vec<String>,
}

/// A variant as given by an admin, unvalidated. `option_values` are (option name, value) pairs.
#[derive(Debug, Clone, Default)]
pub struct VariantDraft {
    pub sku: Option<String>,
    pub option_values: Vec<(String, String)>,
    /// Minor units and currency; `None`: the product's price.
    pub price: Option<(i64, String)>,
    pub stock: i64,
}

/// Fields of a variant to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct VariantPatch {
    pub sku: Option<String>,
    pub option_values: Option<Vec<(String, String)>>,
    /// `Some(None)` clears the override.
    pub price: Option<Option<(i64, String)>>,
    pub stock: Option<i64>,
}

/// Which variant a request means when it names only a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// The product's one live variant; a product with several is refused, naming `variant_id`.
    Only,
    /// The first live variant in stock, else the first live one (the NextBuy routes, which know
    /// nothing of variants).
    FirstInStock,
}

/// 0-3 options with distinct names (ignoring case), each with 1-100 distinct values.
pub fn parse_options(drafts: &[OptionDraft]) -> Result<Vec<ProductOption>> {
    if drafts.len() > MAX_OPTIONS {
        return Err(Error::validation(
            "options",
            format!("a product has at most {MAX_OPTIONS} options"),
        ));
    }
    let mut names = HashSet::new();
    drafts
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let at = |e: Error| e.within(&format!("options[{i}]"));
            let name = bounded_text("name", &o.name, 1, 50).map_err(|e| at(e.into()))?;
            if !names.insert(name.to_lowercase()) {
                return Err(at(Error::validation(
                    "name",
                    "another option has this name",
                )));
            }
            if o.values.is_empty() || o.values.len() > MAX_OPTION_VALUES {
                return Err(at(Error::validation(
                    "values",
                    format!("must hold 1 to {MAX_OPTION_VALUES} values"),
                )));
            }
            let mut seen = HashSet::new();
            let values = o
                .values
                .iter()
                .enumerate()
                .map(|(j, v)| {
                    let field = format!("values[{j}]");
                    let value = bounded_text("value", v, 1, 50)
                        .map_err(|e| at(Error::validation(field.clone(), e.message)))?;
                    if !seen.insert(value.clone()) {
                        return Err(at(Error::validation(field, "appears twice")));
                    }
                    Ok(value)
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(ProductOption { name, values })
        })
        .collect()
}

/// A SKU: 1-64 letters, digits, `-`, `_` or `.`.
fn parse_sku(text: &str) -> Result<String> {
    let sku = bounded_text("sku", text, 1, 64)?;
    if !sku
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(Error::validation(
            "sku",
            "may hold only letters, digits, `-`, `_` and `.`",
        ));
    }
    Ok(sku)
}

/// A variant's option values, one per option in the options' order: every option named once, each
/// value one of its option's.
fn parse_values(options: &[ProductOption], given: &[(String, String)]) -> Result<Vec<String>> {
    for (name, _) in given {
        if !options.iter().any(|o| o.name == *name) {
            return Err(Error::validation(
                "option_values",
                format!("`{name}` is not an option of this product"),
            ));
        }
    }
    options
        .iter()
        .map(|o| {
            let value = given
                .iter()
                .find(|(name, _)| *name == o.name)
                .map(|(_, v)| v.trim())
                .ok_or_else(|| {
                    Error::validation("option_values", format!("needs a value for `{}`", o.name))
                })?;
            if !o.values.iter().any(|v| v == value) {
                return Err(Error::validation(
                    format!("option_values.{}", o.name),
                    format!("`{value}` is not one of {}", o.values.join(", ")),
                ));
            }
            Ok(value.to_string())
        })
        .collect()
}

fn parse_variant_price(price: &(i64, String), currency: &str) -> Result<i64> {
    let (amount, code) = price;
    if parse_currency("price.currency", code)? != currency {
        return Err(Error::validation(
            "price.currency",
            format!("must be the product's currency, {currency}"),
        ));
    }
    Ok(Price::parse("price", *amount)?.minor())
}

/// One variant of a product with these options and currency.
pub fn parse_variant(
    options: &[ProductOption],
    currency: &str,
    draft: &VariantDraft,
) -> Result<NewVariant> {
    Ok(NewVariant {
        sku: draft.sku.as_deref().map(parse_sku).transpose()?,
        option_values: parse_values(options, &draft.option_values)?,
        price: draft
            .price
            .as_ref()
            .map(|p| parse_variant_price(p, currency))
            .transpose()?,
        stock: parse_stock("stock", draft.stock)?,
    })
}

/// A new product's variants: the ones given (1-100, no two with the same option values or SKU), or
/// without any, one default variant holding `stock`, which a product with options cannot have.
pub fn parse_variants(
    options: &[ProductOption],
    currency: &str,
    variants: Option<&[VariantDraft]>,
    stock: Option<i64>,
) -> Result<Vec<NewVariant>> {
    let Some(drafts) = variants else {
        if !options.is_empty() {
            return Err(Error::validation(
                "variants",
                "a product with options needs its variants, one per combination sold",
            ));
        }
        return Ok(vec![NewVariant {
            sku: None,
            option_values: Vec::new(),
            price: None,
            stock: parse_stock("stock", stock.unwrap_or(0))?,
        }]);
    };
    if stock.is_some() {
        return Err(Error::validation(
            "stock",
            "give the stock of each variant instead",
        ));
    }
    if drafts.is_empty() || drafts.len() > MAX_VARIANTS {
        return Err(Error::validation(
            "variants",
            format!("must hold 1 to {MAX_VARIANTS} variants"),
        ));
    }
    let mut combinations = HashSet::new();
    let mut skus = HashSet::new();
    drafts
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let at = |e: Error| e.within(&format!("variants[{i}]"));
            let v = parse_variant(options, currency, d).map_err(at)?;
            if !combinations.insert(v.option_values.clone()) {
                return Err(at(Error::validation(
                    "option_values",
                    if options.is_empty() {
                        "a product without options has exactly one variant".to_string()
                    } else {
                        "another variant has the same option values".to_string()
                    },
                )));
            }
            if let Some(sku) = &v.sku
                && !skus.insert(sku.clone())
            {
                return Err(at(Error::validation("sku", "another variant has this SKU")));
            }
            Ok(v)
        })
        .collect()
}

/// Which variant `product` means, as `pick` says; a product that is not sold is not found.
pub async fn choose_variant(store: &Store, product: ProductId, pick: Pick) -> Result<VariantId> {
    let live = store.live_variants(product).await?;
    let chosen = match (pick, live.as_slice()) {
        (_, []) => return Err(Error::NotFound("product")),
        (Pick::Only, [(only, _)]) => *only,
        (Pick::Only, _) => {
            return Err(Error::validation(
                "variant_id",
                format!("product {product} has several variants: name one of them"),
            ));
        }
        (Pick::FirstInStock, all) => {
            all.iter()
                .find(|(_, stock)| *stock > 0)
                .unwrap_or(&all[0])
                .0
        }
    };
    Ok(chosen)
}

/// A variant write's outcome as the caller sees it: the product and the variant written.
fn written(write: std::result::Result<VariantWrite, StoreError>) -> Result<(Product, Variant)> {
    match write {
        Ok(VariantWrite::Done(product, id)) => {
            let variant = product
                .variants
                .iter()
                .find(|v| v.id == id)
                .cloned()
                .ok_or_else(|| Error::Internal(anyhow::anyhow!("variant {id} not read back")))?;
            Ok((*product, variant))
        }
        Ok(VariantWrite::Missing) => Err(Error::NotFound("variant")),
        Ok(VariantWrite::Duplicate) => Err(Error::validation(
            "option_values",
            "another variant of this product has these option values",
        )),
        Ok(VariantWrite::Full) => Err(Error::validation(
            "variants",
            format!("a product holds at most {MAX_VARIANTS} variants"),
        )),
        Ok(VariantWrite::Last) => Err(Error::Conflict {
            code: "last_variant",
            message: "a product keeps one variant at least: archive the product instead".into(),
        }),
        Err(e) => Err(e.into()),
    }
}

impl Catalog {
    /// A product that is sold, for a variant write to check against.
    async fn sold(&self, id: ProductId) -> Result<Product> {
        self.store
            .product(id)
            .await?
            .filter(|p| !p.archived)
            .ok_or(Error::NotFound("product"))
    }

    #[tracing::instrument(skip_all, fields(admin.id = %admin.user_id(), product.id = %id))]
    pub async fn add_variant(
        &self,
        admin: &Admin,
        id: ProductId,
        draft: VariantDraft,
    ) -> Result<(Product, Variant)> {
        let product = self.sold(id).await?;
        let variant = parse_variant(&product.options, &product.currency, &draft)?;
        let done = written(self.store.add_variant(id, variant).await).map_err(|e| match e {
            Error::NotFound(_) => Error::NotFound("product"),
            other => other,
        })?;
        self.invalidate().await;
        Ok(done)
    }

    #[tracing::instrument(skip_all, fields(admin.id = %admin.user_id(), product.id = %id, variant.id = %variant))]
    pub async fn update_variant(
        &self,
        admin: &Admin,
        id: ProductId,
        variant: VariantId,
        patch: VariantPatch,
    ) -> Result<(Product, Variant)> {
        let product = self.sold(id).await?;
        let changes = VariantChanges {
            sku: patch.sku.as_deref().map(parse_sku).transpose()?,
            option_values: patch
                .option_values
                .as_deref()
                .map(|given| parse_values(&product.options, given))
                .transpose()?,
            price: patch
                .price
                .as_ref()
                .map(|p| {
                    p.as_ref()
                        .map(|p| parse_variant_price(p, &product.currency))
                        .transpose()
                })
                .transpose()?,
            stock: patch.stock.map(|s| parse_stock("stock", s)).transpose()?,
        };
        let done = written(self.store.update_variant(id, variant, changes).await)?;
        self.invalidate().await;
        Ok(done)
    }

    #[tracing::instrument(skip_all, fields(admin.id = %admin.user_id(), product.id = %id, variant.id = %variant))]
    pub async fn archive_variant(
        &self,
        admin: &Admin,
        id: ProductId,
        variant: VariantId,
    ) -> Result<()> {
        written(self.store.archive_variant(id, variant).await)?;
        self.invalidate().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes() -> Vec<ProductOption> {
        parse_options(&[OptionDraft {
            name: "Size".into(),
            values: vec!["S".into(), "M".into()],
        }])
        .unwrap()
    }

    fn field(e: Error) -> String {
        match e {
            Error::Validation { field, .. } => field,
            other => panic!("not a validation error: {other:?}"),
        }
    }

    fn sized(value: &str, sku: Option<&str>) -> VariantDraft {
        VariantDraft {
            sku: sku.map(Into::into),
            option_values: vec![("Size".into(), value.into())],
            price: None,
            stock: 1,
        }
    }

    #[test]
    fn bad_options_name_their_field() {
        let option = |name: &str, values: &[&str]| OptionDraft {
            name: name.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        };
        let bad = |o: Vec<OptionDraft>| field(parse_options(&o).unwrap_err());
        assert_eq!(bad(vec![option("", &["S"])]), "options[0].name");
        assert_eq!(
            bad(vec![option("Size", &["S"]), option("size", &["M"])]),
            "options[1].name"
        );
        assert_eq!(bad(vec![option("Size", &[])]), "options[0].values");
        assert_eq!(
            bad(vec![option("Size", &["S", "S"])]),
            "options[0].values[1]"
        );
        assert_eq!(
            bad((0..4).map(|i| option(&format!("o{i}"), &["x"])).collect()),
            "options"
        );
    }

    #[test]
    fn bad_variants_name_their_field() {
        let options = sizes();
        let bad = |v: Vec<VariantDraft>| {
            field(parse_variants(&options, "GBP", Some(&v), None).unwrap_err())
        };
        assert_eq!(
            bad(vec![sized("XL", None)]),
            "variants[0].option_values.Size"
        );
        assert_eq!(
            bad(vec![sized("S", None), sized("S", None)]),
            "variants[1].option_values"
        );
        assert_eq!(
            bad(vec![sized("S", Some("A-1")), sized("M", Some("A-1"))]),
            "variants[1].sku"
        );
        assert_eq!(bad(vec![sized("S", Some("a b"))]), "variants[0].sku");
        let mut colour = sized("S", None);
        colour.option_values.push(("Colour".into(), "red".into()));
        assert_eq!(bad(vec![colour]), "variants[0].option_values");
        let mut none = sized("S", None);
        none.option_values.clear();
        assert_eq!(bad(vec![none]), "variants[0].option_values");
        let mut dollars = sized("S", None);
        dollars.price = Some((100, "USD".into()));
        assert_eq!(bad(vec![dollars]), "variants[0].price.currency");
        assert_eq!(bad(Vec::new()), "variants");
        assert_eq!(
            field(parse_variants(&options, "GBP", None, Some(3)).unwrap_err()),
            "variants"
        );
        assert_eq!(
            field(
                parse_variants(&[], "GBP", Some(&[VariantDraft::default()]), Some(3)).unwrap_err()
            ),
            "stock"
        );
        assert_eq!(
            field(
                parse_variants(
                    &[],
                    "GBP",
                    Some(&[VariantDraft::default(), VariantDraft::default()]),
                    None
                )
                .unwrap_err()
            ),
            "variants[1].option_values"
        );
    }

    #[test]
    fn a_product_without_options_gets_one_default_variant() {
        let v = parse_variants(&[], "GBP", None, Some(7)).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!((v[0].stock, v[0].option_values.len()), (7, 0));
        let v = parse_variants(&sizes(), "GBP", Some(&[sized("M", Some("T-M"))]), None).unwrap();
        assert_eq!(v[0].option_values, ["M"]);
    }
}
