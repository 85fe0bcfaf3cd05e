//! The PostgreSQL and Redis paths against real servers, started by `scripts/services/*` (the
//! README's test command starts them and exports `ORDERFLOW_TEST_POSTGRES_URL` and
//! `ORDERFLOW_TEST_REDIS_URL`).

mod order_writes;
mod support;

use orderflow_ingress_api::rate_limit::Quota;
use orderflow_ingress_api::shared::SharedState;
use poem::http::{Method, StatusCode};
use serde_json::json;
use support::Harness;

fn service_url(variable: &str, script: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!("{variable} is not set: run ./scripts/test, or export {variable}=$(scripts/services/{script})")
    })
}

/// A fresh database on the test server, so runs never see each other's rows. It uses a
/// linguistic collation (ICU's `en-US`, as a PostgreSQL initialised in an English locale
/// would), under which text sorts unlike bytes: queries must not rely on byte order.
async fn fresh_postgres_database() -> String {
    let url = service_url("ORDERFLOW_TEST_POSTGRES_URL", "postgres");
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&url).await.unwrap();
    let name = format!("orderflow_test_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(&format!(
        "CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' \
         LOCALE 'C.UTF-8'"
    ))
    .execute(&admin)
    .await
    .unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_claims_each_key_once_and_stores_every_write() {
    let url = fresh_postgres_database().await;
    let database = orderflow_ingress_api::db::Database::connect(&url)
        .await
        .unwrap();
    order_writes::concurrent_claims_completions_and_indexes(database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// With PostgreSQL as the user database (and no Redis), orders still go through the atomic
/// intake in the log's database; users, tokens and the outbox are in PostgreSQL.
async fn postgres_holds_users_tokens_and_the_outbox_and_orders_still_work() {
    let mut config = support::test_config();
    config.database_url = fresh_postgres_database().await;
    let harness = Harness::start_with(config, Default::default()).await;
    assert_eq!(
        harness.state.database.dialect(),
        orderflow_ingress_api::db::Dialect::Postgres
    );
    let admin = harness.admin().await;
    harness.product(&admin, "PG-1", 700, 10).await;
    let (token, refresh, user_id) = harness.customer("pg@example.com").await;
    // Duplicate emails are refused by the unique index.
    harness
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "pg@example.com", "password": "another password", "name": "Dup"}),
        )
        .await
        .assert_problem(StatusCode::CONFLICT);
    // Refresh rotation and reuse detection.
    let rotated = harness
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    harness
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": refresh}),
        )
        .await
        .assert_problem(StatusCode::UNAUTHORIZED);
    // The reuse revoked the session's access tokens too; a new login works.
    harness
        .get("/api/v1/me", Some(&token))
        .await
        .assert_problem(StatusCode::UNAUTHORIZED);
    let session = harness.login("pg@example.com", "customer password").await;
    let token = session["access_token"].as_str().unwrap().to_string();
    // An order with its idempotency key, replayed.
    let lines = json!([{"sku": "PG-1", "quantity": 1}]);
    let first = harness
        .place(&token, "pg-key", lines.clone(), "tok_visa")
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    let replay = harness
        .place(&token, "pg-key", lines.clone(), "tok_visa")
        .await;
    assert_eq!(replay.body, first.body);
    harness
        .place(
            &token,
            "pg-key",
            json!([{"sku": "PG-1", "quantity": 3}]),
            "tok_visa",
        )
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    let order_id = first.body["order_id"].as_str().unwrap();
    assert_eq!(
        harness.settled(&token, order_id).await["status"],
        "CONFIRMED"
    );
    let listed = harness.get("/api/v1/orders", Some(&token)).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    // A profile change; both user events reach user-events through the outbox.
    let patched = harness
        .call(
            Method::PATCH,
            "/api/v1/me",
            Some(&token),
            Some(json!({"locale": "de-DE"})),
            &[],
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let mut relayed = 0;
    for _ in 0..100 {
        relayed = support::user_event_types(&harness, &user_id).len();
        if relayed >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(relayed, 2);
    assert_eq!(
        harness.get("/health/ready", None).await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_holds_rate_limits_revocations_and_idempotency_keys() {
    // The scaled-out setup: Redis beside PostgreSQL (which holds the SQL order index then).
    let mut config = support::test_config();
    config.redis_url = service_url("ORDERFLOW_TEST_REDIS_URL", "redis");
    config.database_url = fresh_postgres_database().await;
    config.rate_limits.per_user_per_second = 1;
    config.rate_limits.per_user_burst = 20;
    let harness = Harness::start_with(config, Default::default()).await;
    assert_eq!(harness.state.shared.backend_name(), "redis");
    let admin = harness.admin().await;
    harness.product(&admin, "RD-1", 300, 10).await;
    let (token, _, user_id) = harness.customer("redis@example.com").await;

    let lines = json!([{"sku": "RD-1", "quantity": 1}]);
    let first = harness
        .place(&token, "redis-key", lines.clone(), "tok_visa")
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    assert_eq!(
        harness
            .place(&token, "redis-key", lines.clone(), "tok_visa")
            .await
            .body,
        first.body
    );
    harness
        .place(
            &token,
            "redis-key",
            json!([{"sku": "RD-1", "quantity": 2}]),
            "tok_visa",
        )
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    // With Redis, keys live there and the order index in SQL: separate writes, so a key is
    // leased first. A live lease refuses a duplicate (409); once it runs out (its request
    // died), a retry takes it over with the same order id.
    assert!(harness.state.intake.is_none());
    let body = support::order_body(lines.clone(), "tok_visa");
    let now = orderflow_runtime::Clock::now_ms(&harness.clock);
    let leased_order = orderflow_schemas::ids::OrderId::generate(now).to_string();
    let begun = harness
        .state
        .shared
        .idempotency_begin(
            &format!("orders:{user_id}:busy-key"),
            &support::request_hash_hex(&body),
            &leased_order,
            now,
        )
        .await
        .unwrap();
    assert!(matches!(
        begun,
        orderflow_ingress_api::shared::IdempotencyBegin::Started { .. }
    ));
    harness
        .place(&token, "busy-key", lines.clone(), "tok_visa")
        .await
        .assert_problem(StatusCode::CONFLICT);
    harness.clock.advance_ms(31_000);
    let retried = harness
        .place(&token, "busy-key", lines.clone(), "tok_visa")
        .await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{}", retried.body);
    assert_eq!(retried.body["order_id"], leased_order.as_str());
    let listed = harness.get("/api/v1/orders", Some(&token)).await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        2,
        "{}",
        listed.body
    );

    // Logout revokes through Redis.
    let session = harness
        .login("redis@example.com", "customer password")
        .await;
    let access = session["access_token"].as_str().unwrap();
    assert_eq!(
        harness.get("/api/v1/me", Some(access)).await.status,
        StatusCode::OK
    );
    let out = harness
        .post("/api/v1/auth/logout", Some(access), json!({}))
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    harness
        .get("/api/v1/me", Some(access))
        .await
        .assert_problem(StatusCode::UNAUTHORIZED);

    // The per-user limit runs out in Redis.
    let mut limited = None;
    for _ in 0..25 {
        let reply = harness.get("/api/v1/me", Some(&token)).await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(reply);
            break;
        }
    }
    let limited = limited.expect("the burst of 20 runs out");
    limited.assert_problem(StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.header("Retry-After").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_rate_limit_through_redis() {
    let url = service_url("ORDERFLOW_TEST_REDIS_URL", "redis");
    let first = SharedState::redis(&url).await.unwrap();
    let second = SharedState::redis(&url).await.unwrap();
    let key = format!("shared-{}", uuid::Uuid::now_v7());
    let quota = Quota {
        per_second: 1,
        burst: 4,
    };
    let now = 1_000_000;
    for instance in [&first, &second, &first, &second] {
        assert_eq!(instance.rate_limit(&key, quota, now).await.unwrap(), None);
    }
    let retry = second.rate_limit(&key, quota, now).await.unwrap();
    assert_eq!(
        retry,
        Some(1_000_000),
        "one emission interval, in microseconds"
    );
    assert_eq!(
        first.rate_limit(&key, quota, now + 1_000).await.unwrap(),
        None
    );
    // Revocations too.
    let jti = uuid::Uuid::now_v7().to_string();
    let session = uuid::Uuid::now_v7().to_string();
    assert!(!second.is_revoked(&jti, &session, now).await.unwrap());
    first.revoke_token(&jti, now + 60_000, now).await.unwrap();
    assert!(second.is_revoked(&jti, &session, now).await.unwrap());
    // And whole sessions: any token of a revoked session, on any instance.
    let other_jti = uuid::Uuid::now_v7().to_string();
    assert!(!second.is_revoked(&other_jti, &session, now).await.unwrap());
    first
        .revoke_session(&session, now + 60_000, now)
        .await
        .unwrap();
    assert!(second.is_revoked(&other_jti, &session, now).await.unwrap());
}

/// The outbox relay reads rows above a high-water mark, so on PostgreSQL (where sequence
/// values are taken at insert and commits land in any order) outbox writers must commit in
/// `seq` order, or a row committed late below the mark would never be relayed. Many users are
/// created concurrently while a reader follows the outbox exactly as the relay does; every
/// row must be seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outbox_rows_never_appear_below_the_relay_position() {
    use orderflow_ingress_api::db::Database;
    use std::collections::BTreeSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    const USERS: usize = 300;
    let database = Database::connect(&fresh_postgres_database().await)
        .await
        .unwrap();
    let writing = Arc::new(AtomicBool::new(true));
    let follower = {
        let database = database.clone();
        let writing = writing.clone();
        tokio::spawn(async move {
            let (mut next, mut seen) = (0_i64, BTreeSet::new());
            loop {
                let done = !writing.load(Ordering::Acquire);
                let rows = database.outbox_from(next, 500).await.unwrap();
                if let Some(last) = rows.last() {
                    next = last.seq + 1;
                }
                seen.extend(rows.iter().map(|row| row.user_id));
                if done && rows.is_empty() {
                    return seen;
                }
            }
        })
    };
    let writers: Vec<_> = (0..USERS)
        .map(|index| {
            let database = database.clone();
            tokio::spawn(async move {
                let user = customer_record(index);
                database.create_user(&user).await.unwrap();
                user.id
            })
        })
        .collect();
    let mut created = BTreeSet::new();
    for writer in writers {
        created.insert(writer.await.unwrap());
    }
    writing.store(false, Ordering::Release);
    let seen = follower.await.unwrap();
    let missed: Vec<_> = created.difference(&seen).collect();
    assert!(
        missed.is_empty(),
        "{} of {USERS} outbox rows committed below the follower's position: {missed:?}",
        missed.len()
    );
}

/// A thief replays an old refresh token of a family while the user rotates the current one:
/// whichever runs first, the family ends revoked and the token the rotation issued with it is
/// dead too (on PostgreSQL both take the family's lock, so the revocation cannot miss it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_reuse_during_a_rotation_revokes_the_new_token_too() {
    use orderflow_ingress_api::db::Database;
    use orderflow_ingress_api::db::refresh_tokens::RefreshOutcome;

    let database = Database::connect(&fresh_postgres_database().await)
        .await
        .unwrap();
    let now = 1_700_000_000_000_i64;
    let expires = now + 3_600_000;
    let customer = customer_record(0);
    database.create_user(&customer).await.unwrap();
    let user = customer.id;
    for round in 0..30 {
        let family = format!("family-{round}");
        let token = |name: &str| format!("{round}-{name}");
        database
            .insert_refresh_token(&token("a"), &family, user, now, expires)
            .await
            .unwrap();
        // a -> b: `a` is now used; presenting it again is reuse.
        let rotated = database
            .rotate_refresh_token(&token("a"), &token("b"), now, expires)
            .await
            .unwrap();
        assert!(matches!(rotated, RefreshOutcome::Rotated { .. }));
        let (a, b, c, x) = (token("a"), token("b"), token("c"), token("x"));
        let (user_rotation, thief) = tokio::join!(
            database.rotate_refresh_token(&b, &c, now, expires),
            database.rotate_refresh_token(&a, &x, now, expires),
        );
        assert!(
            matches!(thief.unwrap(), RefreshOutcome::Reused { .. }),
            "round {round}"
        );
        let user_rotation = user_rotation.unwrap();
        if matches!(user_rotation, RefreshOutcome::Rotated { .. }) {
            // The user's rotation went first and issued `c`: the revocation covered it.
            let after = database
                .rotate_refresh_token(&token("c"), &token("d"), now, expires)
                .await
                .unwrap();
            assert!(
                !matches!(after, RefreshOutcome::Rotated { .. }),
                "round {round}: the token issued during the reuse is still alive: {after:?}"
            );
        }
    }
}

/// A customer row for the database-level tests, distinct per `index`.
fn customer_record(index: usize) -> orderflow_ingress_api::db::users::UserRecord {
    use orderflow_schemas::ids::UserId;
    use orderflow_schemas::messages::user_events::{NotificationChannels, UserRole};
    let now_ms = 1_700_000_000_000 + index as i64;
    orderflow_ingress_api::db::users::UserRecord {
        id: UserId::generate(now_ms),
        email: format!("customer-{index}@example.com"),
        password_hash: "not a real hash".into(),
        role: UserRole::Customer,
        name: format!("Customer {index}"),
        phone: None,
        locale: "en".into(),
        channels: NotificationChannels {
            email: true,
            sms: false,
            push: false,
        },
        preferences: Default::default(),
        created_at_ms: now_ms,
        updated_at_ms: now_ms,
    }
}
