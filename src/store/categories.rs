//! The `category` table: records keyed by slug, two levels deep at most.

use surrealdb::types::{RecordId, SurrealValue};

use crate::domain::{Category, CategorySlug};

use super::{Store, StoreError};

#[derive(Debug, SurrealValue)]
struct CategoryRow {
    slug: String,
    name: String,
    parent: Option<String>,
}

impl From<CategoryRow> for Category {
    fn from(r: CategoryRow) -> Self {
        Self {
            slug: r.slug,
            name: r.name,
            parent: r.parent,
        }
    }
}

#[derive(Debug, SurrealValue)]
struct NewCategory {
    id: RecordId,
    name: String,
    parent: Option<RecordId>,
}

/// A category as `CategoryRow` reads it.
macro_rules! category_columns {
    () => {
        "record::id(id) AS slug, name,
         (IF parent = NONE { NONE } ELSE { record::id(parent) }) AS parent"
    };
}

/// What a category write came to; every outcome but the first changed nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum CategoryWrite {
    Done(Category),
    /// `create`: the slug is taken.
    Taken,
    /// `update`: there is no such category.
    Missing,
    /// The parent named does not exist.
    NoParent,
    /// The parent named has a parent itself, or the category has children (so it cannot get a parent),
    /// or it names itself.
    TooDeep,
}

/// What deleting a category came to.
#[derive(Debug, PartialEq, Eq)]
pub enum CategoryDelete {
    Deleted,
    Missing,
    /// A product or a child category still names it.
    InUse,
}

/// The checks of `create_category` and `update_category`, in their block (one transaction). The
/// parent is written too: two transactions that each only read what the other writes could both
/// commit (snapshot isolation), e.g. a child made under a parent being deleted.
macro_rules! parent_checks {
    () => {
        "LET $parent_rec = IF $parent = NONE { NONE } ELSE { type::record('category', $parent) };
         IF $parent_rec != NONE {
             LET $p = (SELECT parent FROM ONLY $parent_rec);
             IF $p = NONE { RETURN 'no_parent' };
             IF $p.parent != NONE OR $parent = $slug { RETURN 'too_deep' };
             -- Written here so that a concurrent delete or move of the parent conflicts with this.
             UPDATE $parent_rec SET claims += 1;
         };"
    };
}

impl Store {
    /// Every category, top-level ones first, each level by name.
    pub async fn list_categories(&self) -> Result<Vec<Category>, StoreError> {
        let mut response = self
            .db()
            .query(concat!(
                "SELECT ",
                category_columns!(),
                ", parent != NONE AS nested FROM category ORDER BY nested, name, slug"
            ))
            .await?;
        let rows: Vec<CategoryRow> = response.take(0)?;
        Ok(rows.into_iter().map(Category::from).collect())
    }

    /// The key and its children's: what a catalog filtered by `key` shows. Any text: a product
    /// written before categories were records may name one that is not a slug (schema 0010).
    pub async fn category_family(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let mut response = self
            .db()
            .query(
                "SELECT VALUE record::id(id) FROM category
                 WHERE parent = type::record('category', $slug)",
            )
            .bind(("slug", key.to_string()))
            .await?;
        let mut family: Vec<String> = response.take(0)?;
        family.insert(0, key.to_string());
        Ok(family)
    }

    pub async fn create_category(
        &self,
        slug: &CategorySlug,
        name: &str,
        parent: Option<&CategorySlug>,
    ) -> Result<CategoryWrite, StoreError> {
        let outcome = self
            .retry_on_conflict(|| async {
                let mut response = self
                    .db()
                    .query(concat!(
                        "{",
                        parent_checks!(),
                        "IF record::exists(type::record('category', $slug)) { RETURN 'taken' };
                         CREATE type::record('category', $slug) SET name = $name, parent = $parent_rec;
                         RETURN 'done';
                         }"
                    ))
                    .bind(("slug", slug.to_string()))
                    .bind(("name", name.to_string()))
                    .bind(("parent", parent.map(CategorySlug::to_string)))
                    .await?;
                Ok(response.take::<Option<String>>(0)?.unwrap_or_default())
            })
            .await?;
        self.category_outcome(slug, &outcome).await
    }

    /// Renames a category and, when `parent` is given, moves it (`Some(None)`: to the top level).
    pub async fn update_category(
        &self,
        slug: &CategorySlug,
        name: Option<&str>,
        parent: Option<Option<&CategorySlug>>,
    ) -> Result<CategoryWrite, StoreError> {
        let outcome = self
            .retry_on_conflict(|| async {
                let mut response = self
                    .db()
                    .query(concat!(
                        "{
                         LET $me = type::record('category', $slug);
                         IF !record::exists($me) { RETURN 'missing' };
                         IF $move {",
                        parent_checks!(),
                        "    IF $parent_rec != NONE
                                AND count(SELECT id FROM category WHERE parent = $me LIMIT 1) > 0 {
                                 RETURN 'too_deep'
                             };
                             UPDATE $me SET parent = $parent_rec;
                         };
                         UPDATE $me SET name = $name ?? name;
                         RETURN 'done';
                         }"
                    ))
                    .bind(("slug", slug.to_string()))
                    .bind(("name", name.map(str::to_string)))
                    .bind(("move", parent.is_some()))
                    .bind(("parent", parent.flatten().map(CategorySlug::to_string)))
                    .await?;
                Ok(response.take::<Option<String>>(0)?.unwrap_or_default())
            })
            .await?;
        self.category_outcome(slug, &outcome).await
    }

    async fn category_outcome(
        &self,
        slug: &CategorySlug,
        outcome: &str,
    ) -> Result<CategoryWrite, StoreError> {
        Ok(match outcome {
            "done" => {
                let mut response = self
                    .db()
                    .query(concat!(
                        "SELECT ",
                        category_columns!(),
                        " FROM ONLY type::record('category', $slug)"
                    ))
                    .bind(("slug", slug.to_string()))
                    .await?;
                match response.take::<Option<CategoryRow>>(0)? {
                    Some(row) => CategoryWrite::Done(row.into()),
                    // Deleted between the write and this read.
                    None => CategoryWrite::Missing,
                }
            }
            "taken" => CategoryWrite::Taken,
            "missing" => CategoryWrite::Missing,
            "no_parent" => CategoryWrite::NoParent,
            "too_deep" => CategoryWrite::TooDeep,
            other => return Err(StoreError::UnknownOutcome(other.to_string())),
        })
    }

    /// Deletes a category that no product (archived ones included: their orders show them) and no
    /// child names.
    pub async fn delete_category(&self, slug: &CategorySlug) -> Result<CategoryDelete, StoreError> {
        let outcome: String = self
            .retry_on_conflict(|| async {
                let mut response = self
                    .db()
                    .query(
                        "{
                         LET $me = type::record('category', $slug);
                         IF !record::exists($me) { RETURN 'missing' };
                         IF count(SELECT id FROM product WHERE category = $slug LIMIT 1) > 0
                            OR count(SELECT id FROM category WHERE parent = $me LIMIT 1) > 0 {
                             RETURN 'in_use'
                         };
                         DELETE $me;
                         RETURN 'deleted';
                         }",
                    )
                    .bind(("slug", slug.to_string()))
                    .await?;
                Ok(response.take::<Option<String>>(0)?.unwrap_or_default())
            })
            .await?;
        Ok(match outcome.as_str() {
            "deleted" => CategoryDelete::Deleted,
            "missing" => CategoryDelete::Missing,
            "in_use" => CategoryDelete::InUse,
            other => return Err(StoreError::UnknownOutcome(other.to_string())),
        })
    }

    /// Makes the categories that are missing (the starter catalog's: parents listed before their
    /// children), leaving existing ones as they are; returns how many were new.
    pub async fn insert_missing_categories(
        &self,
        categories: Vec<(CategorySlug, String, Option<CategorySlug>)>,
    ) -> Result<usize, StoreError> {
        let record = |slug: &CategorySlug| RecordId::new("category", slug.to_string());
        let rows: Vec<NewCategory> = categories
            .iter()
            .map(|(slug, name, parent)| NewCategory {
                id: record(slug),
                name: name.clone(),
                parent: parent.as_ref().map(record),
            })
            .collect();
        let mut response = self
            .db()
            .query("INSERT IGNORE INTO category $rows RETURN VALUE record::id(id)")
            .bind(("rows", rows))
            .await?;
        let inserted: Vec<String> = response.take(0)?;
        Ok(inserted.len())
    }
}
