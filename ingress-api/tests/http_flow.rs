//! End-to-end HTTP tests of the whole flow: the API in front of every topology.

mod support;

use orderflow_ingress_api::platform::order_intake::IntakeBegin;
use orderflow_ingress_api::platform::topologies::FulfillmentOptionsShared;
use orderflow_processors::payment::PaymentConfig;
use poem::http::{Method, StatusCode};
use serde_json::json;
use support::{Harness, order_body};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_goes_from_post_to_confirmed_and_shows_everywhere() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    harness.product(&admin, "MUG-BLUE", 1_299, 10).await;
    let (token, _, user_id) = harness.customer("ada@example.com").await;

    let placed = harness
        .place(
            &token,
            "key-1",
            json!([{"sku": "MUG-BLUE", "quantity": 2}]),
            "tok_visa",
        )
        .await;
    assert_eq!(placed.status, StatusCode::ACCEPTED, "{}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_string();
    assert_eq!(placed.body["status"], "PENDING");
    assert_eq!(
        placed.header("Location"),
        Some(format!("/api/v1/orders/{order_id}").as_str())
    );
    // Read-your-writes: with the position, the order is in the view at once.
    let position = placed.body["position"].as_str().unwrap();
    let read = harness
        .get(
            &format!("/api/v1/orders/{order_id}?position={position}"),
            Some(&token),
        )
        .await;
    assert_eq!(read.status, StatusCode::OK);
    assert_ne!(
        read.body["status"], "PENDING",
        "the saga has seen the order"
    );

    let order = harness.settled(&token, &order_id).await;
    assert_eq!(order["status"], "CONFIRMED", "{order}");
    assert_eq!(order["user_id"], json!(user_id));
    assert_eq!(
        order["lines"][0]["line_total"]["amount_minor"],
        json!(2_598)
    );
    assert_eq!(order["totals"]["subtotal"]["amount_minor"], json!(2_598));

    let listed = harness.get("/api/v1/orders", Some(&token)).await;
    assert_eq!(listed.body["items"][0]["order_id"], json!(order_id));

    // The reservation is committed after the order is confirmed (the saga's Commit reaches
    // the inventory task in a later hop).
    assert!(
        harness
            .topologies
            .wait_until_idle(std::time::Duration::from_secs(10))
            .unwrap()
    );
    let stock = harness
        .get("/api/v1/inventory/MUG-BLUE", Some(&admin))
        .await;
    assert_eq!(stock.body["committed"], json!(2), "{}", stock.body);
    assert_eq!(stock.body["available"], json!(8));

    // Ship and deliver (admin), then the order is terminal.
    let shipped = harness
        .post(
            &format!("/api/v1/orders/{order_id}/ship"),
            Some(&admin),
            json!({"carrier": "DHL", "tracking_number": "JD0123"}),
        )
        .await;
    assert_eq!(shipped.status, StatusCode::ACCEPTED, "{}", shipped.body);
    let after_ship = harness
        .get(
            &format!(
                "/api/v1/orders/{order_id}?position={}",
                shipped.body["position"].as_str().unwrap()
            ),
            Some(&token),
        )
        .await;
    assert_eq!(after_ship.body["status"], "SHIPPED");
    let delivered = harness
        .call(
            Method::POST,
            &format!("/api/v1/orders/{order_id}/deliver"),
            Some(&admin),
            None,
            &[],
        )
        .await;
    assert_eq!(delivered.status, StatusCode::ACCEPTED, "{}", delivered.body);
    let final_view = harness
        .get(
            &format!("/api/v1/orders/{order_id}?wait=5&status=SHIPPED"),
            Some(&token),
        )
        .await;
    assert_eq!(final_view.body["status"], "DELIVERED");

    // The notifier wrote to the customer's outbox.
    let mut notifications = serde_json::Value::Null;
    for _ in 0..100 {
        notifications = harness
            .get("/api/v1/me/notifications", Some(&token))
            .await
            .body;
        if !notifications["items"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        !notifications["items"].as_array().unwrap().is_empty(),
        "{notifications}"
    );

    // Metrics show the route, the outcome and the order latency. The log watcher counts
    // outcomes on its own thread, so the counters may trail the order view briefly.
    let mut metrics = harness.get("/metrics", None).await;
    for _ in 0..100 {
        let text = metrics.body.as_str().unwrap();
        if text.contains("orderflow_order_latency_seconds_count{outcome=\"confirmed\"} 1")
            && text.contains("orderflow_order_latency_seconds_count{outcome=\"delivered\"} 1")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        metrics = harness.get("/metrics", None).await;
    }
    let text = metrics.body.as_str().unwrap();
    assert!(
        text.contains("route=\"/api/v1/orders\",status=\"202\""),
        "{text}"
    );
    assert!(text.contains("orderflow_order_events_total{type=\"confirmed\"}"));
    assert!(text.contains("orderflow_order_latency_seconds_count{outcome=\"confirmed\"} 1"));
    // And to the end of its lifecycle.
    assert!(text.contains("orderflow_order_latency_seconds_count{outcome=\"delivered\"} 1"));
    assert!(text.contains("orderflow_task_records_in_total"));
    let ready = harness.get("/health/ready", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    // Once the topologies stop, readiness fails with a problem that says which check did.
    harness.state.topologies.shutdown().unwrap();
    let not_ready = harness.get("/health/ready", None).await;
    not_ready.assert_problem(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(not_ready.body["topologies"], false, "{}", not_ready.body);
    assert_eq!(not_ready.body["database"], true, "{}", not_ready.body);
    assert!(
        not_ready.body["detail"]
            .as_str()
            .unwrap()
            .contains("topologies"),
        "{}",
        not_ready.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_stock_and_declined_payments_end_the_order() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    harness.product(&admin, "RARE", 5_000, 1).await;
    let (token, _, _) = harness.customer("bob@example.com").await;

    let too_many = harness
        .place(
            &token,
            "a",
            json!([{"sku": "RARE", "quantity": 2}]),
            "tok_visa",
        )
        .await;
    let order = harness
        .settled(&token, too_many.body["order_id"].as_str().unwrap())
        .await;
    assert_eq!(order["status"], "REJECTED", "{order}");
    assert_eq!(order["rejections"][0]["reason"], "insufficient_stock");
    assert_eq!(order["rejections"][0]["available"], json!(1));

    let declined = harness
        .place(
            &token,
            "b",
            json!([{"sku": "RARE", "quantity": 1}]),
            "tok_decline",
        )
        .await;
    let order = harness
        .settled(&token, declined.body["order_id"].as_str().unwrap())
        .await;
    assert_eq!(order["status"], "PAYMENT_FAILED", "{order}");
    // Both endings are timed from their POST, like a confirmation.
    let timed =
        |outcome: &str| format!("orderflow_order_latency_seconds_count{{outcome=\"{outcome}\"}} 1");
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = harness
            .get("/metrics", None)
            .await
            .body
            .as_str()
            .unwrap()
            .to_string();
        if metrics.contains(&timed("payment_failed")) && metrics.contains(&timed("rejected")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(metrics.contains(&timed("payment_failed")), "{metrics}");
    assert!(metrics.contains(&timed("rejected")), "{metrics}");
    // Nothing stays reserved.
    assert!(
        harness
            .topologies
            .wait_until_idle(std::time::Duration::from_secs(10))
            .unwrap()
    );
    let stock = harness.get("/api/v1/inventory/RARE", Some(&admin)).await;
    assert_eq!(stock.body["reserved"], json!(0));
    assert_eq!(stock.body["available"], json!(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_cancels_and_cannot_cancel_twice() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    harness.product(&admin, "LAMP", 2_000, 5).await;
    let (token, _, _) = harness.customer("cy@example.com").await;
    let placed = harness
        .place(
            &token,
            "k",
            json!([{"sku": "LAMP", "quantity": 1}]),
            "tok_visa",
        )
        .await;
    let order_id = placed.body["order_id"].as_str().unwrap().to_string();
    assert_eq!(
        harness.settled(&token, &order_id).await["status"],
        "CONFIRMED"
    );
    let cancelled = harness
        .post(
            &format!("/api/v1/orders/{order_id}/cancel"),
            Some(&token),
            json!({"reason": "changed my mind"}),
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::ACCEPTED, "{}", cancelled.body);
    let view = harness
        .get(
            &format!("/api/v1/orders/{order_id}?wait=5&status=CONFIRMED"),
            Some(&token),
        )
        .await;
    assert_eq!(view.body["status"], "CANCELLED");
    harness
        .post(
            &format!("/api/v1/orders/{order_id}/cancel"),
            Some(&token),
            json!({"reason": "again"}),
        )
        .await
        .assert_problem(StatusCode::CONFLICT);
    assert!(
        harness
            .topologies
            .wait_until_idle(std::time::Duration::from_secs(10))
            .unwrap()
    );
    let stock = harness.get("/api/v1/inventory/LAMP", Some(&admin)).await;
    assert_eq!(stock.body["available"], json!(5), "stock came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_that_never_answers_fails_at_the_deadline() {
    // Retries that would outlast the deadline, so it is the deadline that ends the order.
    let fulfillment = FulfillmentOptionsShared {
        payment: std::sync::Arc::new(PaymentConfig {
            max_attempts: 1_000,
            reconcile_attempts: 1_000,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 5_000,
        }),
        ..FulfillmentOptionsShared::default()
    };
    let harness = Harness::start_with(support::test_config(), fulfillment).await;
    let admin = harness.admin().await;
    harness.product(&admin, "SLOW", 1_000, 5).await;
    let (token, _, _) = harness.customer("dee@example.com").await;
    let placed = harness
        .place(
            &token,
            "k",
            json!([{"sku": "SLOW", "quantity": 1}]),
            "tok_timeout",
        )
        .await;
    let order_id = placed.body["order_id"].as_str().unwrap().to_string();
    let waiting = harness
        .get(
            &format!("/api/v1/orders/{order_id}?wait=5&status=PENDING"),
            Some(&token),
        )
        .await;
    let mut status = waiting.body["status"].as_str().unwrap().to_string();
    assert!(
        matches!(status.as_str(), "RESERVING" | "AWAITING_PAYMENT"),
        "{status}"
    );
    // The default payment deadline is two minutes; move the clock past it. Until the order
    // ends it is reserving or awaiting the payment (the stock reservation may still be on its
    // way when the clock first moves).
    for _ in 0..30 {
        harness.clock.advance_ms(10_000);
        let view = harness
            .get(
                &format!("/api/v1/orders/{order_id}?wait=1&status={status}"),
                Some(&token),
            )
            .await;
        status = view.body["status"].as_str().unwrap().to_string();
        if !matches!(status.as_str(), "RESERVING" | "AWAITING_PAYMENT") {
            assert_eq!(status, "PAYMENT_FAILED", "{}", view.body);
            // Ended by the deadline, not by running out of attempts: no PaymentFailed came
            // from payments, and the saga says why.
            let failed: Vec<_> =
                support::topic_envelopes(&harness, "order-events", "order_id", &order_id)
                    .into_iter()
                    .filter(|envelope| envelope["type"] == "OrderPaymentFailed")
                    .collect();
            assert_eq!(failed.len(), 1);
            assert_eq!(failed[0]["payload"]["reason"], "the payment timed out");
            let payment_events: Vec<String> =
                support::topic_envelopes(&harness, "payment-events", "order_id", &order_id)
                    .iter()
                    .map(|envelope| envelope["type"].as_str().unwrap().to_string())
                    .collect();
            assert!(
                payment_events.contains(&"PaymentInitiated".to_string())
                    && !payment_events.contains(&"PaymentFailed".to_string()),
                "{payment_events:?}"
            );
            return;
        }
    }
    panic!("the payment deadline never ended the order (still {status})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_replay_refuse_other_bodies_and_concurrent_duplicates() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    harness.product(&admin, "PEN", 150, 100).await;
    let (token, _, user_id) = harness.customer("eve@example.com").await;
    let lines = json!([{"sku": "PEN", "quantity": 1}]);
    let first = harness
        .place(&token, "same-key", lines.clone(), "tok_visa")
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let replay = harness
        .place(&token, "same-key", lines.clone(), "tok_visa")
        .await;
    assert_eq!(replay.status, StatusCode::ACCEPTED);
    assert_eq!(replay.body, first.body, "the same response");
    assert_eq!(replay.header("Location"), first.header("Location"));
    harness
        .place(
            &token,
            "same-key",
            json!([{"sku": "PEN", "quantity": 2}]),
            "tok_visa",
        )
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    // Another user's identical key is theirs alone.
    let (other, _, _) = harness.customer("fay@example.com").await;
    let theirs = harness
        .place(&other, "same-key", lines.clone(), "tok_visa")
        .await;
    assert_eq!(theirs.status, StatusCode::ACCEPTED);
    assert_ne!(theirs.body["order_id"], first.body["order_id"]);
    // A request still in flight holds its key: a duplicate gets 409.
    let body = order_body(lines.clone(), "tok_visa");
    let intake = harness
        .state
        .intake
        .as_ref()
        .expect("the embedded platform places orders through the atomic intake");
    let in_flight = intake
        .begin(
            &format!("orders:{user_id}:busy-key"),
            &support::request_digest(&body),
            harness.clock_now(),
        )
        .unwrap();
    let IntakeBegin::Fresh { claim, .. } = in_flight else {
        panic!("a new key is fresh: {in_flight:?}");
    };
    harness
        .place(&token, "busy-key", lines.clone(), "tok_visa")
        .await
        .assert_problem(StatusCode::CONFLICT);
    // That request died before its write (which holds the command, the index entry and the
    // response together): nothing of it exists, so a retry places the order afresh.
    drop(claim);
    let retried = harness
        .place(&token, "busy-key", lines.clone(), "tok_visa")
        .await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{}", retried.body);
    // Exactly one order per key: the user has the first order and the retried one.
    let listed = harness.get("/api/v1/orders", Some(&token)).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 2);
    // No key: 400.
    harness
        .call(
            Method::POST,
            "/api/v1/orders",
            Some(&token),
            Some(order_body(lines, "tok_visa")),
            &[],
        )
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_key_place_one_order_and_all_see_its_response() {
    let harness = std::sync::Arc::new(Harness::start().await);
    let admin = harness.admin().await;
    harness.product(&admin, "INK", 90, 100).await;
    let (token, _, _) = harness.customer("gus@example.com").await;
    let lines = json!([{"sku": "INK", "quantity": 1}]);
    let attempts: Vec<_> = (0..16)
        .map(|_| {
            let (harness, token, lines) = (harness.clone(), token.clone(), lines.clone());
            tokio::spawn(async move { harness.place(&token, "one-key", lines, "tok_visa").await })
        })
        .collect();
    let mut accepted = Vec::new();
    for attempt in attempts {
        let reply = attempt.await.unwrap();
        match reply.status {
            StatusCode::ACCEPTED => accepted.push(reply.body),
            // Refused while the first was still being written.
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    assert!(!accepted.is_empty());
    assert!(
        accepted.iter().all(|body| body == &accepted[0]),
        "every acceptance is the same response: {accepted:?}"
    );
    // After them, the key replays that response, and the user has exactly one order.
    let replay = harness.place(&token, "one-key", lines, "tok_visa").await;
    assert_eq!(replay.body, accepted[0]);
    let listed = harness.get("/api/v1/orders", Some(&token)).await;
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", listed.body);
    assert_eq!(items[0]["order_id"], accepted[0]["order_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_key_is_free_again_and_the_sweep_deletes_it() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    harness.product(&admin, "CAP", 120, 100).await;
    let (token, _, user_id) = harness.customer("hal@example.com").await;
    let one = json!([{"sku": "CAP", "quantity": 1}]);
    let two = json!([{"sku": "CAP", "quantity": 2}]);
    let first = harness
        .place(&token, "daily-key", one.clone(), "tok_visa")
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    harness
        .place(&token, "daily-key", two.clone(), "tok_visa")
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    // A day later the key is as if never used: another body places another order.
    harness
        .clock
        .advance_ms(orderflow_ingress_api::shared::IDEMPOTENCY_TTL_MS);
    let fresh_token =
        |tokens: serde_json::Value| tokens["access_token"].as_str().unwrap().to_string();
    let token = fresh_token(harness.login("hal@example.com", "customer password").await);
    let second = harness
        .place(&token, "daily-key", two.clone(), "tok_visa")
        .await;
    assert_eq!(second.status, StatusCode::ACCEPTED, "{}", second.body);
    assert_ne!(second.body["order_id"], first.body["order_id"]);
    let intake = harness.state.intake.as_ref().unwrap();
    let scope = format!("orders:{user_id}:daily-key");
    // The sweep removes the first record's expiry entry but keeps the renewed record.
    assert!(intake.sweep_expired(harness.clock_now(), 100).unwrap() >= 1);
    assert!(matches!(
        intake
            .begin(
                &scope,
                &support::request_digest(&order_body(two.clone(), "tok_visa")),
                harness.clock_now()
            )
            .unwrap(),
        IntakeBegin::Completed(_)
    ));
    // Once the renewed record expires too, the sweep deletes it.
    harness
        .clock
        .advance_ms(orderflow_ingress_api::shared::IDEMPOTENCY_TTL_MS);
    let token = fresh_token(harness.login("hal@example.com", "customer password").await);
    assert!(intake.sweep_expired(harness.clock_now(), 100).unwrap() >= 1);
    let far_past = harness.clock_now() - 10 * orderflow_ingress_api::shared::IDEMPOTENCY_TTL_MS;
    assert!(
        matches!(
            intake
                .begin(
                    &scope,
                    &support::request_digest(&order_body(one, "tok_visa")),
                    far_past
                )
                .unwrap(),
            IntakeBegin::Fresh { reuse: None, .. }
        ),
        "deleted: even a read as of long ago finds nothing"
    );
    // Both orders stay in the user's list: the index is not the key's to expire.
    let listed = harness.get("/api/v1/orders", Some(&token)).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coupons_are_created_read_listed_applied_and_discontinued() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    harness.product(&admin, "CUP", 2_000, 10).await;
    let (token, _, _) = harness.customer("ivy@example.com").await;
    let now = harness.clock_now();
    let coupon = json!({"code": "SAVE10", "kind": "percentage", "basis_points": 1000,
                        "valid_from_ms": now - 1_000, "valid_until_ms": now + 86_400_000});
    harness
        .post("/api/v1/coupons", Some(&token), coupon.clone())
        .await
        .assert_problem(StatusCode::FORBIDDEN);
    let created = harness.post("/api/v1/coupons", Some(&admin), coupon).await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.body);
    assert_eq!(created.header("Location"), Some("/api/v1/coupons/SAVE10"));
    let position = created.body["position"].as_str().unwrap();
    let read = harness
        .get(
            &format!("/api/v1/coupons/SAVE10?position={position}"),
            Some(&admin),
        )
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert_eq!(read.body["basis_points"], 1000);
    assert_eq!(read.body["active"], true);
    assert_eq!(read.body["coupon_id"], created.body["coupon_id"]);
    // The list trails the write by a moment (it reads the saga's table of coupons).
    let listed = list_coupons_until(&harness, &admin, &["SAVE10"]).await;
    assert_eq!(listed["items"][0]["code"], "SAVE10", "{listed}");
    harness
        .get("/api/v1/coupons", Some(&token))
        .await
        .assert_problem(StatusCode::FORBIDDEN);
    harness
        .get("/api/v1/coupons/NOPE", Some(&admin))
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    harness
        .post("/api/v1/coupons/NOPE/discontinue", Some(&admin), json!({}))
        .await
        .assert_problem(StatusCode::NOT_FOUND);

    // It discounts an order: 10% of 20.00.
    assert!(
        harness
            .topologies
            .wait_until_idle(std::time::Duration::from_secs(10))
            .unwrap()
    );
    let mut body = order_body(json!([{"sku": "CUP", "quantity": 1}]), "tok_visa");
    body["coupon_code"] = json!("SAVE10");
    let placed = harness
        .call(
            Method::POST,
            "/api/v1/orders",
            Some(&token),
            Some(body.clone()),
            &[("Idempotency-Key", "c1")],
        )
        .await;
    assert_eq!(placed.status, StatusCode::ACCEPTED, "{}", placed.body);
    let order = harness
        .settled(&token, placed.body["order_id"].as_str().unwrap())
        .await;
    assert_eq!(order["status"], "CONFIRMED", "{order}");
    assert_eq!(order["totals"]["discount"]["amount_minor"], 200, "{order}");

    // Discontinued, it applies no more; the order it discounted keeps its discount.
    let stopped = harness
        .post(
            "/api/v1/coupons/SAVE10/discontinue",
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(stopped.status, StatusCode::ACCEPTED, "{}", stopped.body);
    let position = stopped.body["position"].as_str().unwrap();
    let read = harness
        .get(
            &format!("/api/v1/coupons/SAVE10?position={position}"),
            Some(&admin),
        )
        .await;
    assert_eq!(read.body["active"], false, "{}", read.body);
    assert!(read.body["valid_until_ms"].as_i64().unwrap() <= harness.clock_now());
    assert!(
        harness
            .topologies
            .wait_until_idle(std::time::Duration::from_secs(10))
            .unwrap()
    );
    let refused = harness
        .call(
            Method::POST,
            "/api/v1/orders",
            Some(&token),
            Some(body),
            &[("Idempotency-Key", "c2")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::ACCEPTED, "{}", refused.body);
    let refused = harness
        .settled(&token, refused.body["order_id"].as_str().unwrap())
        .await;
    assert_eq!(refused["status"], "REJECTED", "{refused}");
    let first = harness
        .get(
            &format!(
                "/api/v1/orders/{}",
                placed.body["order_id"].as_str().unwrap()
            ),
            Some(&token),
        )
        .await;
    assert_eq!(first.body["totals"]["discount"]["amount_minor"], 200);

    // A coupon published before the catalog kept coupons itself (straight onto catalog-events,
    // as older builds left them) is read, listed and discontinued all the same.
    use orderflow_schemas::messages::catalog_commands::CouponKind;
    use orderflow_schemas::messages::catalog_events::{CatalogEvent, CouponUpserted};
    let legacy = CatalogEvent::CouponUpserted(CouponUpserted {
        coupon_id: orderflow_schemas::ids::CouponId::generate(now),
        code: orderflow_schemas::codes::CouponCode::parse("OLDIE").unwrap(),
        kind: CouponKind::Percentage { basis_points: 500 },
        valid_from: orderflow_schemas::time::Timestamp::from_unix_millis(now - 1_000),
        valid_until: orderflow_schemas::time::Timestamp::from_unix_millis(now + 86_400_000),
        minimum_basket: None,
    });
    let record = orderflow_processors::wire::keyed_envelope_record(
        "catalog-events",
        harness.state.partitions("catalog-events"),
        legacy,
        now,
        orderflow_schemas::ids::CorrelationId::generate(now),
    )
    .unwrap();
    harness.state.log.produce(vec![record]).unwrap();
    let listed = list_coupons_until(&harness, &admin, &["OLDIE", "SAVE10"]).await;
    assert_eq!(listed["items"][0]["code"], "OLDIE", "{listed}");
    let oldie = harness.get("/api/v1/coupons/OLDIE", Some(&admin)).await;
    assert_eq!(oldie.status, StatusCode::OK, "{}", oldie.body);
    assert_eq!(oldie.body["active"], true);
    let stopped = harness
        .post("/api/v1/coupons/OLDIE/discontinue", Some(&admin), json!({}))
        .await;
    assert_eq!(stopped.status, StatusCode::ACCEPTED, "{}", stopped.body);
    let position = stopped.body["position"].as_str().unwrap();
    let read = harness
        .get(
            &format!("/api/v1/coupons/OLDIE?position={position}"),
            Some(&admin),
        )
        .await;
    assert_eq!(read.body["active"], false, "{}", read.body);
}

/// Lists coupons (admin) until every code in `codes` is there, in a bounded time.
async fn list_coupons_until(harness: &Harness, admin: &str, codes: &[&str]) -> serde_json::Value {
    let mut listed = serde_json::Value::Null;
    for _ in 0..100 {
        let reply = harness.get("/api/v1/coupons", Some(admin)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        listed = reply.body;
        let present: Vec<&str> = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|item| item["code"].as_str())
            .collect();
        if codes.iter().all(|code| present.contains(code)) {
            return listed;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("coupons {codes:?} never listed: {listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_analytics_summary_reports_the_last_closed_minute() {
    let harness = Harness::start().await;
    // Start a minute into a 10-minute pane, so the two minutes below close a minute window but
    // no hour window (hour windows end on 10-minute boundaries, and the harness starts at the
    // real time of day); everything below, the restock's StockLow included, is in this pane.
    let now = orderflow_runtime::Clock::now_ms(&harness.clock);
    harness
        .clock
        .advance_ms((now / 600_000 + 1) * 600_000 + 60_000 - now);
    let admin = harness.admin().await;
    harness.product(&admin, "LAMP", 3_000, 10).await;
    let (token, _, _) = harness.customer("kai@example.com").await;
    let lines = json!([{"sku": "LAMP", "quantity": 2}]);
    let first = harness.place(&token, "a1", lines.clone(), "tok_visa").await;
    assert_eq!(
        harness
            .settled(&token, first.body["order_id"].as_str().unwrap())
            .await["status"],
        "CONFIRMED"
    );
    // Two minutes later another order moves event time on: the first minute closes.
    harness.clock.advance_ms(120_000);
    let second = harness.place(&token, "a2", lines, "tok_visa").await;
    harness
        .settled(&token, second.body["order_id"].as_str().unwrap())
        .await;
    let mut summary = serde_json::Value::Null;
    for _ in 0..100 {
        summary = harness
            .get("/api/v1/analytics/summary?window=minute", Some(&admin))
            .await
            .body;
        if summary["window_start_ms"].is_i64() && summary["orders"]["confirmed"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(summary["orders"]["confirmed"], 1, "{summary}");
    assert_eq!(summary["payment_success_rate"], 1.0, "{summary}");
    assert_eq!(summary["top_skus"][0]["sku"], "LAMP", "{summary}");
    assert_eq!(summary["top_skus"][0]["units"], 2, "{summary}");
    assert_eq!(summary["revenue"][0]["group"], "USD", "{summary}");
    let hours = harness
        .get("/api/v1/analytics/summary?window=hour", Some(&admin))
        .await;
    assert_eq!(hours.status, StatusCode::OK);
    assert!(
        hours.body["window_start_ms"].is_null(),
        "no hour has closed: {}",
        hours.body
    );
}

impl Harness {
    fn clock_now(&self) -> i64 {
        use orderflow_runtime::Clock;
        self.clock.now_ms()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_order_is_invisible_and_admin_routes_are_refused() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    harness.product(&admin, "BOOK", 900, 10).await;
    let (owner, _, _) = harness.customer("gus@example.com").await;
    let (stranger, _, _) = harness.customer("hal@example.com").await;
    let placed = harness
        .place(
            &owner,
            "k",
            json!([{"sku": "BOOK", "quantity": 1}]),
            "tok_visa",
        )
        .await;
    let order_id = placed.body["order_id"].as_str().unwrap().to_string();
    harness.settled(&owner, &order_id).await;
    harness
        .get(&format!("/api/v1/orders/{order_id}"), Some(&stranger))
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    harness
        .post(
            &format!("/api/v1/orders/{order_id}/cancel"),
            Some(&stranger),
            json!({"reason": "x"}),
        )
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    harness
        .get("/api/v1/orders/not-an-id", Some(&stranger))
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    assert!(
        harness.get("/api/v1/orders", Some(&stranger)).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // An admin sees it.
    assert_eq!(
        harness
            .get(&format!("/api/v1/orders/{order_id}"), Some(&admin))
            .await
            .status,
        StatusCode::OK
    );
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/products".to_string(),
            Some(
                json!({"sku": "X", "name": "x", "category": "c", "price": {"amount_minor": 1, "currency": "USD"}}),
            ),
        ),
        (
            Method::POST,
            "/api/v1/inventory/BOOK/restock".to_string(),
            Some(json!({"quantity": 5})),
        ),
        (Method::GET, "/api/v1/inventory/BOOK".to_string(), None),
        (Method::GET, "/api/v1/inventory/low-stock".to_string(), None),
        (
            Method::POST,
            format!("/api/v1/orders/{order_id}/ship"),
            Some(json!({"carrier": "DHL", "tracking_number": "1"})),
        ),
        (
            Method::POST,
            format!("/api/v1/orders/{order_id}/deliver"),
            None,
        ),
        (
            Method::GET,
            "/api/v1/analytics/aggregates".to_string(),
            None,
        ),
        (Method::GET, "/api/v1/analytics/summary".to_string(), None),
        (Method::GET, "/api/v1/coupons".to_string(), None),
    ] {
        harness
            .call(method, &path, Some(&owner), body, &[])
            .await
            .assert_problem(StatusCode::FORBIDDEN);
    }
    // Without a token: 401.
    harness
        .get("/api/v1/orders", None)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_revoked_forged_and_reused_tokens_are_refused() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let harness = Harness::start().await;
    let (token, refresh, _) = harness.customer("ivy@example.com").await;
    assert_eq!(
        harness.get("/api/v1/me", Some(&token)).await.status,
        StatusCode::OK
    );

    // Forged: a customer token edited to say admin, and an alg=none token.
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["role"] = json!("admin");
    let edited = URL_SAFE_NO_PAD.encode(claims.to_string());
    let forged = format!("{}.{edited}.{}", parts[0], parts[2]);
    harness
        .get("/api/v1/me", Some(&forged))
        .await
        .assert_problem(StatusCode::UNAUTHORIZED);
    let none = format!("{}.{edited}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#));
    harness
        .get("/api/v1/me", Some(&none))
        .await
        .assert_problem(StatusCode::UNAUTHORIZED);

    // Refresh rotates; presenting the old refresh token again revokes the session.
    let rotated = harness
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let next_refresh = rotated.body["refresh_token"].as_str().unwrap().to_string();
    harness
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": refresh}),
        )
        .await
        .assert_problem(StatusCode::UNAUTHORIZED);
    harness
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": next_refresh}),
        )
        .await
        .assert_problem(StatusCode::UNAUTHORIZED);
    // The revoked session's access tokens stop working too, the one its thief got by
    // rotating included; another session of the same user is untouched.
    let other_session = harness.login("ivy@example.com", "customer password").await;
    for access in [
        token.as_str(),
        rotated.body["access_token"].as_str().unwrap(),
    ] {
        harness
            .get("/api/v1/me", Some(access))
            .await
            .assert_problem(StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        harness
            .get("/api/v1/me", other_session["access_token"].as_str())
            .await
            .status,
        StatusCode::OK
    );

    // Logout revokes the access token before it expires, and every other access token of
    // the same session (here one from a refresh).
    let session = harness.login("ivy@example.com", "customer password").await;
    let access = session["access_token"].as_str().unwrap();
    let refreshed = harness
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": session["refresh_token"]}),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    let out = harness
        .post("/api/v1/auth/logout", Some(access), json!({}))
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    for access in [access, refreshed.body["access_token"].as_str().unwrap()] {
        harness
            .get("/api/v1/me", Some(access))
            .await
            .assert_problem(StatusCode::UNAUTHORIZED);
    }
    // The session's current refresh token (the rotated one) is revoked with it.
    harness
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": refreshed.body["refresh_token"]}),
        )
        .await
        .assert_problem(StatusCode::UNAUTHORIZED);
    // A refresh token in the logout body ends its own session too (here another login's).
    let first = harness.login("ivy@example.com", "customer password").await;
    let second = harness.login("ivy@example.com", "customer password").await;
    let out = harness
        .post(
            "/api/v1/auth/logout",
            first["access_token"].as_str(),
            json!({"refresh_token": second["refresh_token"]}),
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    harness
        .get("/api/v1/me", second["access_token"].as_str())
        .await
        .assert_problem(StatusCode::UNAUTHORIZED);
    harness
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": second["refresh_token"]}),
        )
        .await
        .assert_problem(StatusCode::UNAUTHORIZED);

    // Expired: 15 minutes later the access token is refused.
    let fresh = harness.login("ivy@example.com", "customer password").await;
    let fresh = fresh["access_token"].as_str().unwrap();
    assert_eq!(
        harness.get("/api/v1/me", Some(fresh)).await.status,
        StatusCode::OK
    );
    harness.clock.advance_ms(15 * 60 * 1000);
    let expired = harness.get("/api/v1/me", Some(fresh)).await;
    expired.assert_problem(StatusCode::UNAUTHORIZED);
    assert!(expired.body["detail"].as_str().unwrap().contains("expired"));

    // Wrong password and unknown email look the same.
    let wrong = harness
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "ivy@example.com", "password": "nope nope"}),
        )
        .await;
    wrong.assert_problem(StatusCode::UNAUTHORIZED);
    let unknown = harness
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "nobody@example.com", "password": "nope nope"}),
        )
        .await;
    assert_eq!(unknown.body["detail"], wrong.body["detail"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_get_the_right_problem() {
    let harness = Harness::start().await;
    let (token, _, _) = harness.customer("jo@example.com").await;
    // Malformed JSON: 400.
    let response = harness
        .client
        .post("/api/v1/orders")
        .header("Authorization", format!("Bearer {token}"))
        .header("Idempotency-Key", "k")
        .content_type("application/json")
        .body("{not json")
        .send()
        .await
        .0;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.content_type(), Some("application/problem+json"));
    // Not JSON at all: 415.
    let response = harness
        .client
        .post("/api/v1/auth/login")
        .content_type("text/plain")
        .body("hello")
        .send()
        .await
        .0;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(response.content_type(), Some("application/problem+json"));
    // Oversized: 413.
    let huge = "x".repeat(100 * 1024);
    let response = harness
        .client
        .post("/api/v1/auth/login")
        .content_type("application/json")
        .body(format!("{{\"email\": \"{huge}\", \"password\": \"x\"}}"))
        .send()
        .await
        .0;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.content_type(), Some("application/problem+json"));
    // Well-formed but invalid: 422 naming the field.
    let invalid = harness
        .place(
            &token,
            "k2",
            json!([{"sku": "bad sku!", "quantity": 1}]),
            "tok_visa",
        )
        .await;
    invalid.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(invalid.body["field"], "lines[0].sku");
    let duplicate_lines = harness
        .place(
            &token,
            "k3",
            json!([{"sku": "A", "quantity": 1}, {"sku": "A", "quantity": 2}]),
            "tok_visa",
        )
        .await;
    duplicate_lines.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(duplicate_lines.body["field"], "lines[1].sku");
    // The shape the OpenAPI document's Problem example shows.
    assert_eq!(
        duplicate_lines.body["detail"],
        "lines[1].sku: SKU A already appears in lines[0]; merge the quantities into one line"
    );
    // Input that breaks the schema itself (here quantity's minimum of 1) is a 400.
    harness
        .place(
            &token,
            "k4",
            json!([{"sku": "A", "quantity": 0}]),
            "tok_visa",
        )
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    harness
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "short@example.com", "password": "short", "name": "S"}),
        )
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    harness
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "jo@example.com", "password": "long enough pw", "name": "Jo"}),
        )
        .await
        .assert_problem(StatusCode::CONFLICT);
    // Unknown route and bad paging: problem too.
    harness
        .get("/api/v1/nothing", None)
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    harness
        .get("/api/v1/products?limit=0", None)
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    harness
        .get(
            "/api/v1/orders/0190f1a2-0000-7000-8000-000000000000?wait=999",
            Some(&token),
        )
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_reach_user_events_once_and_profiles_change() {
    let harness = Harness::start().await;
    let (token, _, user_id) = harness.customer("kim@example.com").await;
    let patched = harness
        .call(
            Method::PATCH,
            "/api/v1/me",
            Some(&token),
            Some(
                json!({"name": "Kim K", "channels": {"email": true, "sms": false, "push": true},
                        "preferences": {"muted": ["order_created", "payment_refunded"]}}),
            ),
            &[],
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["name"], "Kim K");
    assert_eq!(patched.body["channels"]["push"], json!(true));
    assert_eq!(
        patched.body["preferences"]["muted"],
        json!(["order_created", "payment_refunded"])
    );
    let read = harness.get("/api/v1/me", Some(&token)).await;
    assert_eq!(read.body["preferences"], patched.body["preferences"]);
    // An unknown kind is refused by the schema.
    harness
        .call(
            Method::PATCH,
            "/api/v1/me",
            Some(&token),
            Some(json!({"preferences": {"muted": ["newsletters"]}})),
            &[],
        )
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    // The relay moves both events to user-events, once each.
    for _ in 0..100 {
        if support::user_event_types(&harness, &user_id).len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Past another relay round: nothing is relayed twice.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let found = support::user_event_types(&harness, &user_id);
    assert_eq!(
        found,
        vec!["UserCreated".to_string(), "UserUpdated".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_over_the_rate_limit_gets_429_with_retry_after() {
    let mut config = support::test_config();
    config.rate_limits.per_user_per_second = 1;
    config.rate_limits.per_user_burst = 3;
    let harness = Harness::start_with(config, Default::default()).await;
    let (token, _, _) = harness.customer("lee@example.com").await;
    for _ in 0..3 {
        assert_eq!(
            harness.get("/api/v1/me", Some(&token)).await.status,
            StatusCode::OK
        );
    }
    let limited = harness.get("/api/v1/me", Some(&token)).await;
    limited.assert_problem(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.header("Retry-After"), Some("1"));
    harness.clock.advance_ms(1_000);
    assert_eq!(
        harness.get("/api/v1/me", Some(&token)).await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_and_positions_the_api_never_issued_get_422_naming_the_parameter() {
    let harness = Harness::start().await;
    let (token, _, _) = harness.customer("tokens@example.com").await;
    let order_id = uuid::Uuid::now_v7();
    let checks = [
        // Not base64url at all, then base64url of something else.
        ("/api/v1/orders?cursor=%21%21".to_string(), "cursor"),
        (
            "/api/v1/orders?cursor=bm90LWFuLW9yZGVyLWlk".to_string(),
            "cursor",
        ),
        (
            "/api/v1/me/notifications?cursor=c29tZW9uZS1lbHNl".to_string(),
            "cursor",
        ),
        ("/api/v1/products?cursor=%F0%9F%98%80".to_string(), "cursor"),
        (
            format!("/api/v1/orders/{order_id}?position=%1F"),
            "position",
        ),
        // Well-formed, but beyond the end of the topic.
        (
            format!(
                "/api/v1/orders/{order_id}?position={}",
                orderflow_ingress_api::platform::Position {
                    topic: "order-commands".into(),
                    partition: 0,
                    offset: 1_000_000_000,
                }
                .token()
            ),
            "position",
        ),
    ];
    for (path, parameter) in checks {
        let response = harness.get(&path, Some(&token)).await;
        response.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            response.body["field"], parameter,
            "{path}: {}",
            response.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_or_boolean_where_the_schema_says_string_is_refused() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    for sku in [json!(0), json!(true)] {
        let response = harness
            .post(
                "/api/v1/products",
                Some(&admin),
                json!({"sku": sku, "name": "Mug", "category": "kitchen",
                       "price": {"amount_minor": 100, "currency": "USD"}}),
            )
            .await;
        response.assert_problem(StatusCode::BAD_REQUEST);
        assert!(
            response.body["detail"].as_str().unwrap().contains("string"),
            "{}",
            response.body
        );
    }
    // The same body with a string SKU is accepted.
    let accepted = harness
        .post(
            "/api/v1/products",
            Some(&admin),
            json!({"sku": "MUG-0", "name": "Mug", "category": "kitchen",
                   "price": {"amount_minor": 100, "currency": "USD"}}),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_can_be_changed_right_after_its_creation_with_the_position_token() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    let product = |name: &str, amount: i64| {
        json!({"sku": "LAMP-1", "name": name, "category": "home", "active": true,
               "low_stock_threshold": 3, "price": {"amount_minor": amount, "currency": "EUR"}})
    };
    let created = harness
        .post("/api/v1/products", Some(&admin), product("Lamp", 4_000))
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.body);
    let position = created.body["position"].as_str().unwrap();
    // With the creation's position the update sees the product, however far the view lags.
    let mut update = product("Desk lamp", 4_500);
    update.as_object_mut().unwrap().remove("sku");
    let updated = harness
        .call(
            Method::PUT,
            &format!("/api/v1/products/LAMP-1?position={position}"),
            Some(&admin),
            Some(update),
            &[],
        )
        .await;
    assert_eq!(updated.status, StatusCode::ACCEPTED, "{}", updated.body);
    let repriced = harness
        .post(
            &format!(
                "/api/v1/products/LAMP-1/price?position={}",
                updated.body["position"].as_str().unwrap()
            ),
            Some(&admin),
            json!({"price": {"amount_minor": 3_900, "currency": "EUR"}}),
        )
        .await;
    assert_eq!(repriced.status, StatusCode::ACCEPTED, "{}", repriced.body);
    let read = harness
        .get(
            &format!(
                "/api/v1/products/LAMP-1?position={}",
                repriced.body["position"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(read.body["name"], "Desk lamp", "{}", read.body);
    assert_eq!(read.body["price"]["amount_minor"], 3_900);
    // A position from another resource's topic is refused, naming the parameter.
    let order_position = orderflow_ingress_api::platform::Position {
        topic: "order-commands".into(),
        partition: 0,
        offset: 0,
    }
    .token();
    let refused = harness
        .call(
            Method::POST,
            &format!("/api/v1/products/LAMP-1/discontinue?position={order_position}"),
            Some(&admin),
            None,
            &[],
        )
        .await;
    refused.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.body["field"], "position");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_lists_filter_by_category_and_price_and_pages_cover_each_match_once() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    // (sku, category, price)
    let catalog = [
        ("K-1", "kitchen", 100),
        ("K-2", "kitchen", 300),
        ("K-3", "kitchen", 500),
        ("K-4", "kitchen", 700),
        ("G-1", "garden", 200),
        ("G-2", "garden", 600),
    ];
    for (sku, category, price) in catalog {
        let created = harness
            .post(
                "/api/v1/products",
                Some(&admin),
                json!({"sku": sku, "name": format!("Product {sku}"), "category": category,
                       "price": {"amount_minor": price, "currency": "USD"}}),
            )
            .await;
        assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.body);
        let position = created.body["position"].as_str().unwrap();
        let read = harness
            .get(&format!("/api/v1/products/{sku}?position={position}"), None)
            .await;
        assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    }
    let skus_of = |page: &serde_json::Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["sku"].as_str().unwrap().to_string())
            .collect()
    };
    let listed = harness.get("/api/v1/products?category=garden", None).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(skus_of(&listed.body), vec!["G-1", "G-2"]);
    let priced = harness
        .get("/api/v1/products?min_price=300&max_price=600", None)
        .await;
    assert_eq!(skus_of(&priced.body), vec!["G-2", "K-2", "K-3"]);
    for item in priced.body["items"].as_array().unwrap() {
        let price = item["price"]["amount_minor"].as_i64().unwrap();
        assert!((300..=600).contains(&price), "{item}");
    }
    // One item per page, following the cursor: every kitchen product once, in order.
    let mut seen = Vec::new();
    let mut path = "/api/v1/products?category=kitchen&limit=1".to_string();
    for _ in 0..10 {
        let page = harness.get(&path, None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        seen.extend(skus_of(&page.body));
        match page.body["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/api/v1/products?category=kitchen&limit=1&cursor={cursor}")
            }
            None => break,
        }
    }
    assert_eq!(seen, vec!["K-1", "K-2", "K-3", "K-4"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_profile_patches_of_different_fields_all_land() {
    let harness = Harness::start().await;
    let (token, _, user_id) = harness.customer("pat@example.com").await;
    for round in 0..8 {
        let name = format!("Pat {round}");
        let locale = if round % 2 == 0 { "de-DE" } else { "fr-FR" };
        let (named, localized) = tokio::join!(
            harness.call(
                Method::PATCH,
                "/api/v1/me",
                Some(&token),
                Some(json!({"name": name})),
                &[],
            ),
            harness.call(
                Method::PATCH,
                "/api/v1/me",
                Some(&token),
                Some(json!({"locale": locale})),
                &[],
            ),
        );
        assert_eq!(named.status, StatusCode::OK, "{}", named.body);
        assert_eq!(localized.status, StatusCode::OK, "{}", localized.body);
        let me = harness.get("/api/v1/me", Some(&token)).await;
        assert_eq!(me.body["name"], name.as_str(), "round {round}: {}", me.body);
        assert_eq!(me.body["locale"], locale, "round {round}: {}", me.body);
    }
    // Every change reached user-events: UserCreated, then two UserUpdated per round.
    let mut types = Vec::new();
    for _ in 0..100 {
        types = support::user_event_types(&harness, &user_id);
        if types.len() >= 17 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(types.len(), 17, "{types:?}");
}
