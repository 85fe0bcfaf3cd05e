//! The order path's batched SQL writes on SQLite (see `order_writes/mod.rs`).

mod order_writes;

use orderflow_ingress_api::db::Database;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_claims_each_key_once_and_stores_every_write() {
    let directory = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        directory.path().join("users.db").display()
    );
    let database = Database::connect(&url).await.unwrap();
    order_writes::concurrent_claims_completions_and_indexes(database).await;
}
