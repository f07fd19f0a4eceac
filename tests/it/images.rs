//! Product images: uploaded by admins, checked by content, stored in a directory or an S3 bucket
//! (a real S3-compatible server: `moto_server`), served at `/media/...` and listed on the product.

use std::process::{Child, Command, Stdio};

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Api, TestApp, free_port, settings};
use crate::reliability::report::report;

/// The first bytes of a PNG, then some of "the image".
fn png() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..4000u32).map(|i| (i * 7 % 251) as u8));
    bytes
}

async fn fetch(app: &TestApp, url: &str) -> reqwest::Response {
    reqwest::get(app.url(url)).await.unwrap()
}

/// Uploads, serves and removes an image; what every media store must do.
async fn images_round_trip(app: &TestApp, admin: &Api) -> String {
    let hat = app.product(admin, "Hat", 1500, 3).await;
    let path = format!("/api/v1/products/{hat}/images");
    let added = admin
        .upload(&path, "hat.png", &png(), Some("A grey hat"))
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    let image = added.json["images"][0].clone();
    assert_eq!(image["alt"], "A grey hat");
    let url = image["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("/media/") && url.ends_with(".png"), "{url}");

    let served = fetch(app, &url).await;
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.headers()["content-type"], "image/png");
    assert!(
        served.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert_eq!(served.headers()["x-content-type-options"], "nosniff");
    // An image is never a document: nothing in it may run, whatever a browser makes of it.
    assert_eq!(
        served.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
    assert_eq!(served.bytes().await.unwrap().to_vec(), png());
    let shown = app.client().get(&format!("/api/v1/products/{hat}")).await;
    assert_eq!(shown.json["images"][0]["url"], url.as_str());
    let listed = app.client().get("/api/v1/products").await;
    assert_eq!(listed.json["items"][0]["images"][0]["url"], url.as_str());

    let id = image["id"].as_str().unwrap();
    let removed = admin.delete(&format!("{path}/{id}")).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.text);
    assert_eq!(fetch(app, &url).await.status(), StatusCode::NOT_FOUND);
    admin
        .delete(&format!("{path}/{id}"))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
    let shown = app.client().get(&format!("/api/v1/products/{hat}")).await;
    assert_eq!(shown.json["images"], Value::Array(Vec::new()));
    url
}

#[tokio::test]
async fn images_are_checked_stored_in_the_directory_and_served() {
    let dir = std::env::temp_dir().join(crate::common::unique("storefront-media"));
    let app = TestApp::spawn_with(settings(&[("MEDIA_URL", dir.to_str().unwrap())])).await;
    let admin = app.admin().await;
    let url = images_round_trip(&app, &admin).await;
    let files = || std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(files(), 0, "the removed image's file is gone");
    let _ = url;

    let hat = app.product(&admin, "Cap", 900, 3).await;
    let path = format!("/api/v1/products/{hat}/images");
    // Known by content: a text file named .png, an SVG, an empty file are refused, naming `file`.
    for (name, bytes) in [
        ("fake.png", b"hello, I am text".to_vec()),
        (
            "x.svg",
            b"<svg xmlns='http://www.w3.org/2000/svg'/>".to_vec(),
        ),
        ("empty.jpg", Vec::new()),
    ] {
        let res = admin.upload(&path, name, &bytes, None).await;
        assert_eq!(
            res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
            "file",
            "{name}"
        );
    }
    // A form without its file names the field; a body that is no form at all is a 400 or 415.
    let (content_type, form) = crate::common::multipart("x.png", b"", None);
    let form = String::from_utf8(form)
        .unwrap()
        .replace("name=\"file\"", "name=\"other\"");
    let no_file = admin
        .http
        .post(app.url(&path))
        .bearer_auth(admin.token.as_deref().unwrap())
        .header("content-type", content_type)
        .body(form)
        .send()
        .await
        .unwrap();
    let no_file = crate::common::read(no_file).await;
    assert_eq!(
        no_file.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "file"
    );
    admin
        .post(&path, serde_json::json!({}))
        .await
        .assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    // Past 5 MiB: 413 before the handler reads it.
    let mut huge = png();
    huge.resize(6 * 1024 * 1024, 0);
    admin
        .upload(&path, "huge.png", &huge, None)
        .await
        .assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    // Admins only; a product that does not exist keeps no file.
    let customer = app.customer().await;
    customer
        .api
        .upload(&path, "hat.png", &png(), None)
        .await
        .assert_problem(StatusCode::FORBIDDEN, "forbidden");
    app.client()
        .upload(&path, "hat.png", &png(), None)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    admin
        .upload("/api/v1/products/999999/images", "hat.png", &png(), None)
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(files(), 0, "refused uploads leave no file");
    // Ten at most, in the order given.
    for i in 0..10 {
        let res = admin
            .upload(&path, "hat.png", &png(), Some(&format!("view {i}")))
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    }
    let res = admin.upload(&path, "hat.png", &png(), None).await;
    res.assert_problem(StatusCode::CONFLICT, "too_many_images");
    let shown = app.client().get(&format!("/api/v1/products/{hat}")).await;
    let alts: Vec<&str> = shown.json["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["alt"].as_str().unwrap())
        .collect();
    assert_eq!(alts.len(), 10);
    assert_eq!(alts[0], "view 0");
    assert_eq!(alts[9], "view 9");
    assert_eq!(files(), 10);
    // Only names the service makes are served: no way out of the directory.
    for path in [
        "/media/..%2F..%2Fetc%2Fpasswd",
        "/media/x.png",
        "/media/0123456789abcdef0123456789abcdef.svg",
    ] {
        assert_eq!(
            fetch(&app, path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// An S3-compatible server of the test's own (`moto_server`, which `scripts/test` installs).
struct Moto {
    port: u16,
    child: Child,
}

impl Moto {
    fn start() -> Self {
        let port = free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server is installed (scripts/test installs it)");
        crate::common::wait_for_port(port, "moto_server");
        Self { port, child }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs `script` with boto3 (moto's own dependency) against this server; returns its output.
    fn boto3(&self, script: &str) -> String {
        let out = Command::new("python3")
            .args(["-c", &format!(
                "import boto3\ns3 = boto3.client('s3', endpoint_url='{}', aws_access_key_id='test', \
                 aws_secret_access_key='test', region_name='us-east-1')\n{script}",
                self.endpoint()
            )])
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_go_to_an_s3_bucket_when_media_url_names_one() {
    let moto = Moto::start();
    moto.boto3("s3.create_bucket(Bucket='shop-media')");
    let endpoint = moto.endpoint();
    let app = TestApp::spawn_with(settings(&[
        ("MEDIA_URL", "s3://shop-media/catalog"),
        ("AWS_ENDPOINT_URL", &endpoint),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ]))
    .await;
    let admin = app.admin().await;
    let hat = app.product(&admin, "Beret", 1200, 2).await;
    let added = admin
        .upload(
            &format!("/api/v1/products/{hat}/images"),
            "b.png",
            &png(),
            None,
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    let url = added.json["images"][0]["url"].as_str().unwrap().to_string();
    let file = url.trim_start_matches("/media/");
    // In the bucket, under the prefix, with the bytes sent; and served back through the service.
    let keys = moto.boto3(
        "print('\\n'.join(o['Key'] for o in s3.list_objects_v2(Bucket='shop-media').get('Contents', [])))",
    );
    assert_eq!(keys.trim(), format!("catalog/{file}"));
    let served = fetch(&app, &url).await;
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.bytes().await.unwrap().to_vec(), png());

    // The whole journey against the bucket, and nothing left in it after.
    images_round_trip(&app, &admin).await;
    let id = added.json["images"][0]["id"].as_str().unwrap();
    let removed = admin
        .delete(&format!("/api/v1/products/{hat}/images/{id}"))
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let keys =
        moto.boto3("print(len(s3.list_objects_v2(Bucket='shop-media').get('Contents', [])))");
    assert_eq!(keys.trim(), "0");

    // The bucket gone: an upload is a 503 within seconds, and the product lists nothing new.
    drop(moto);
    let started = std::time::Instant::now();
    admin
        .upload(
            &format!("/api/v1/products/{hat}/images"),
            "b.png",
            &png(),
            None,
        )
        .await
        .assert_problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    report(
        "images",
        format_args!(
            "S3 bucket down: upload refused with 503 after {} ms",
            started.elapsed().as_millis()
        ),
    );
    let shown = app.client().get(&format!("/api/v1/products/{hat}")).await;
    assert_eq!(shown.json["images"], Value::Array(Vec::new()));
}
