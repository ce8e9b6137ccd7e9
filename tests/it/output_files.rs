//! Result files (`sql_query` with `format: parquet`) are served only as written: to the
//! caller that wrote them, only files this server wrote, never through a link, and within the
//! output folder's quota.

use rmcp::model::ReadResourceRequestParams;
use serde_json::json;

use crate::support::*;

const ALICE: &str = "alice-token-0123456789abcdef";
const BOB: &str = "bob-token-fedcba9876543210";

fn config(extra: &str) -> Sandbox {
    let sandbox = Sandbox::new("");
    let out = sandbox.dir.path().join("out");
    let text = std::fs::read_to_string(sandbox.config()).expect("config");
    std::fs::write(
        sandbox.config(),
        format!(
            "output_dir = \"{}\"\n{extra}\n{text}\n[server]\n[[server.tokens]]\nname = \"alice\"\ntoken = \"{ALICE}\"\n[[server.tokens]]\nname = \"bob\"\ntoken = \"{BOB}\"\n",
            out.display()
        ),
    )
    .expect("write config");
    sandbox
}

/// Writes a Parquet result as the client's principal; returns its URI and file name.
async fn write_file(client: &Client, rows: u32) -> (String, String) {
    let result = call(
        client,
        "sql_query",
        json!({"sql": format!("SELECT id, total FROM orders ORDER BY id LIMIT {rows}"), "max_rows": rows, "format": "parquet"}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    let file = structured(&result)["file"].clone();
    (
        file["uri"].as_str().expect("uri").to_owned(),
        file["name"].as_str().expect("name").to_owned(),
    )
}

async fn readable(client: &Client, uri: &str) -> bool {
    client
        .read_resource(ReadResourceRequestParams::new(uri.to_owned()))
        .await
        .is_ok()
}

#[tokio::test]
async fn files_are_served_to_their_writer_only_and_never_through_links_or_foreign_files() {
    let sandbox = config("");
    let out = sandbox.dir.path().join("out");
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[]);
    let alice = connect_http(&server.url("/mcp"), Some(ALICE)).await;
    let bob = connect_http(&server.url("/mcp"), Some(BOB)).await;
    let (uri, name) = write_file(&alice, 100).await;
    assert!(readable(&alice, &uri).await, "the writer reads its file");
    assert!(
        !readable(&bob, &uri).await,
        "another token read alice's file"
    );

    // A file datamcp did not write, named like one of its own.
    let foreign = "datamcp-0123456789abcdef0123456789abcdef.parquet";
    std::fs::copy(out.join(&name), out.join(foreign)).expect("copy");
    assert!(!readable(&alice, &format!("datamcp://output/{foreign}")).await);

    // A link to a file outside the folder, and a link to alice's own file.
    let secret = sandbox.dir.path().join("secret.txt");
    std::fs::write(&secret, "not for clients").expect("write");
    std::os::unix::fs::symlink(&secret, out.join("datamcp-link-out.parquet")).expect("link");
    std::os::unix::fs::symlink(out.join(&name), out.join("datamcp-link-in.parquet")).expect("link");
    for link in ["datamcp-link-out.parquet", "datamcp-link-in.parquet"] {
        assert!(
            !readable(&alice, &format!("datamcp://output/{link}")).await,
            "{link} was served"
        );
    }

    // Alice's file swapped for a link (to a copy of itself): refused too.
    std::fs::rename(out.join(&name), out.join("moved.parquet")).expect("move");
    std::os::unix::fs::symlink(out.join("moved.parquet"), out.join(&name)).expect("link");
    assert!(
        !readable(&alice, &uri).await,
        "a link in place of the file was followed"
    );
    // And a different file put in its place.
    std::fs::remove_file(out.join(&name)).expect("remove link");
    std::fs::copy(out.join("moved.parquet"), out.join(&name)).expect("copy");
    assert!(!readable(&alice, &uri).await, "a replaced file was served");

    // Results are cached per principal as well: bob's identical call is his own.
    let (bobs_uri, _) = write_file(&bob, 100).await;
    assert_ne!(bobs_uri, uri);
    assert!(readable(&bob, &bobs_uri).await);
    assert!(!readable(&alice, &bobs_uri).await);
    alice.cancel().await.expect("close");
    bob.cancel().await.expect("close");
}

#[tokio::test]
async fn the_output_quota_deletes_the_oldest_files_and_refuses_one_too_large() {
    let sandbox = config("output_max_bytes = 40000\n[tools.sql_query]\ncache_ttl_ms = 0\n");
    let out = sandbox.dir.path().join("out");
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[]);
    let alice = connect_http(&server.url("/mcp"), Some(ALICE)).await;
    let mut written = Vec::new();
    for _ in 0..6 {
        written.push(write_file(&alice, 1000).await);
    }
    let size = |name: &str| std::fs::metadata(out.join(name)).map(|m| m.len()).ok();
    let total: u64 = written.iter().filter_map(|(_, name)| size(name)).sum();
    assert!(total <= 40000, "{total} bytes kept over a quota of 40000");
    let (oldest_uri, oldest_name) = &written[0];
    assert!(size(oldest_name).is_none(), "the oldest file was kept");
    assert!(!readable(&alice, oldest_uri).await);
    let (newest_uri, _) = &written[written.len() - 1];
    assert!(readable(&alice, newest_uri).await);

    let huge = call(
        &alice,
        "sql_query",
        json!({"sql": "SELECT * FROM orders", "max_rows": 30000, "format": "parquet"}),
    )
    .await;
    assert!(is_error(&huge));
    assert!(text(&huge).contains("quota"), "{}", text(&huge));
    alice.cancel().await.expect("close");
}

#[tokio::test]
async fn over_stdio_the_local_user_reads_its_files() {
    let sandbox = config("");
    let client = connect(Some(&sandbox.config())).await;
    let (uri, _) = write_file(&client, 50).await;
    assert!(readable(&client, &uri).await);
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn without_tokens_a_file_belongs_to_the_session_that_wrote_it() {
    let sandbox = Sandbox::new("");
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[]);
    let first = connect_http(&server.url("/mcp"), None).await;
    let second = connect_http(&server.url("/mcp"), None).await;
    let (uri, _) = write_file(&first, 20).await;
    assert!(readable(&first, &uri).await);
    assert!(
        !readable(&second, &uri).await,
        "another session read the file"
    );
    first.cancel().await.expect("close");
    second.cancel().await.expect("close");
}
