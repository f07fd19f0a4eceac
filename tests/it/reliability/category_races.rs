//! A category deleted at the moment a product (or a child category) names it: exactly one of the two
//! wins. Each write only reads what the other writes, so under snapshot isolation both could commit
//! and leave a product or a child naming a category that is gone, unless both write one record.

use reqwest::StatusCode;
use serde_json::json;

use super::report::report;
use crate::common::TestApp;

const ROUNDS: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_category_deleted_while_it_is_named_is_never_left_named() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (mut products_won, mut deletes_won, mut children_won, mut parents_deleted) = (0, 0, 0, 0);
    for round in 0..ROUNDS {
        let slug = format!("race-{round}");
        let made = admin
            .post("/api/v1/categories", json!({"slug": slug, "name": "Race"}))
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
        let product = json!({"name": "Racer", "category": slug,
                             "price": {"amount": 100, "currency": "GBP"}, "stock": 1});
        let path = format!("/api/v1/categories/{slug}");
        let (created, deleted) =
            tokio::join!(admin.post("/api/v1/products", product), admin.delete(&path));
        match (created.status, deleted.status) {
            (StatusCode::CREATED, StatusCode::CONFLICT) => products_won += 1,
            (StatusCode::UNPROCESSABLE_ENTITY, StatusCode::NO_CONTENT) => deletes_won += 1,
            other => panic!(
                "round {round}: product {} / delete {}: {other:?}",
                created.text, deleted.text
            ),
        }
        let named = app
            .client()
            .get(&format!("/api/v1/products?category={slug}"))
            .await;
        let listed = app.client().get("/api/v1/categories").await.text;
        let exists = listed.contains(&format!("\"{slug}\""));
        assert_eq!(
            named.json["items"].as_array().unwrap().is_empty(),
            !exists,
            "round {round}: products naming {slug} while it exists = {exists}"
        );

        // The same for a child made under a parent being deleted.
        let parent = format!("parent-{round}");
        let made = admin
            .post(
                "/api/v1/categories",
                json!({"slug": parent, "name": "Parent"}),
            )
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
        let child = json!({"slug": format!("child-{round}"), "name": "Child", "parent": parent});
        let path = format!("/api/v1/categories/{parent}");
        let (created, deleted) =
            tokio::join!(admin.post("/api/v1/categories", child), admin.delete(&path));
        match (created.status, deleted.status) {
            (StatusCode::CREATED, StatusCode::CONFLICT) => children_won += 1,
            (StatusCode::UNPROCESSABLE_ENTITY, StatusCode::NO_CONTENT) => parents_deleted += 1,
            other => panic!(
                "round {round}: child {} / delete {}: {other:?}",
                created.text, deleted.text
            ),
        }
    }
    report(
        "category races",
        format!(
            "{ROUNDS} rounds of a product create racing its category's delete: product won {products_won}, \
             delete won {deletes_won}, never both; {ROUNDS} of a child create racing its parent's \
             delete: child won {children_won}, delete won {parents_deleted}, never both"
        ),
    );
}
