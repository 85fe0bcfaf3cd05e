//! Windowed analytics through the test driver: counts and revenue per window, late events within
//! the grace period, final results only when a window closes, and the JSON-lines export.

use std::sync::Arc;

use orderflow_processors::analytics::AnalyticsConfig;
use orderflow_processors::wire::envelope_serde;
use orderflow_runtime::TopologyTestDriver;
use orderflow_schemas::address::{CountryCode, ShippingAddress};
use orderflow_schemas::codes::Sku;
use orderflow_schemas::currency::Currency;
use orderflow_schemas::envelope::{Envelope, Message};
use orderflow_schemas::ids::{CorrelationId, EventId, OrderId, PaymentId, UserId};
use orderflow_schemas::messages::analytics::{
    AnalyticsAggregate, AnalyticsMetric, WindowAggregate,
};
use orderflow_schemas::messages::order_events::{
    OrderConfirmed, OrderCreated, OrderEvent, OrderRejected, OrderRejectionReason, OrderTotals,
    PricedLine,
};
use orderflow_schemas::messages::payment_events::{PaymentEvent, PaymentFailed, PaymentSucceeded};
use orderflow_schemas::money::Money;
use orderflow_schemas::time::Timestamp;
use orderflow_topologies::analytics::{self, AnalyticsOptions};

const BASE: i64 = 1_767_225_600_000; // a minute boundary

fn pipe<T: Message>(driver: &TopologyTestDriver, topic: &str, payload: T, at_seconds: i64) {
    let time = BASE + at_seconds * 1_000;
    let key = payload.partition_key();
    let envelope = Envelope::new(
        payload,
        Timestamp::from_unix_millis(time),
        CorrelationId::generate(time),
        None,
        EventId::generate(time),
    );
    driver
        .pipe(topic, &envelope_serde::<T>(), &key, &envelope, time)
        .unwrap();
}

fn usd(amount: i64) -> Money {
    Money::new(amount, Currency::parse("USD").unwrap())
}

fn confirmed(amount: i64) -> OrderEvent {
    OrderEvent::OrderConfirmed(OrderConfirmed {
        order_id: OrderId::generate(BASE),
        user_id: UserId::generate(BASE),
        payment_id: PaymentId::generate(BASE),
        total: usd(amount),
    })
}

fn rejected() -> OrderEvent {
    OrderEvent::OrderRejected(OrderRejected {
        order_id: OrderId::generate(BASE),
        user_id: UserId::generate(BASE),
        reasons: Vec::new(),
        order_reason: Some(OrderRejectionReason::InvalidCoupon),
    })
}

fn succeeded() -> PaymentEvent {
    PaymentEvent::PaymentSucceeded(PaymentSucceeded {
        order_id: OrderId::generate(BASE),
        payment_id: PaymentId::generate(BASE),
        amount: usd(1),
        provider_reference: "ref".to_string(),
        attempt: 1,
    })
}

fn failed() -> PaymentEvent {
    PaymentEvent::PaymentFailed(PaymentFailed {
        order_id: OrderId::generate(BASE),
        payment_id: PaymentId::generate(BASE),
        reason: "declined".to_string(),
        decline_code: None,
        retriable: false,
        attempt: 1,
    })
}

/// The window aggregates reported so far whose key contains `part`.
fn aggregates_matching(driver: &mut TopologyTestDriver, part: &str) -> Vec<WindowAggregate> {
    driver
        .read(
            "analytics-aggregates",
            &envelope_serde::<AnalyticsAggregate>(),
        )
        .unwrap()
        .into_iter()
        .map(|record| match record.value.payload {
            AnalyticsAggregate::WindowAggregate(aggregate) => aggregate,
        })
        .filter(|aggregate| aggregate.window_key.contains(part))
        .collect()
}

fn minute_aggregates(driver: &mut TopologyTestDriver) -> Vec<WindowAggregate> {
    aggregates_matching(driver, "/1m/")
}

#[test]
fn windows_count_and_sum_by_event_time_and_emit_once_when_closed() {
    let export = tempfile::tempdir().unwrap();
    let options = AnalyticsOptions {
        config: Arc::new(AnalyticsConfig { grace_ms: 30_000 }),
        export_directory: Some(export.path().to_path_buf()),
        export_file_bytes: 2_000,
    };
    let mut driver = TopologyTestDriver::new(analytics::topology(&options).unwrap()).unwrap();
    let dead_letters = |driver: &mut TopologyTestDriver| {
        driver.read_raw("order-events.dlq").unwrap().len()
            + driver.read_raw("payment-events.dlq").unwrap().len()
    };
    // Minute 0.
    pipe(&driver, "order-events", confirmed(1_000), 10);
    pipe(&driver, "order-events", confirmed(2_500), 30);
    pipe(&driver, "order-events", rejected(), 40);
    pipe(&driver, "payment-events", succeeded(), 12);
    pipe(&driver, "payment-events", failed(), 50);
    driver.run_until_idle().unwrap();
    // A late event for minute 0, within the grace period (stream time 70 s < 60 s + 30 s).
    pipe(&driver, "order-events", confirmed(500), 70);
    pipe(&driver, "order-events", confirmed(100), 55);
    driver.run_until_idle().unwrap();
    assert!(
        minute_aggregates(&mut driver).is_empty(),
        "nothing is final before the window closes"
    );

    // Stream time passes 90 s everywhere: minute 0 closes. A fact for minute 0 arriving after
    // that is too late and is dropped.
    for _ in 0..10 {
        pipe(&driver, "order-events", confirmed(1), 200);
        pipe(&driver, "order-events", rejected(), 200);
        pipe(&driver, "payment-events", succeeded(), 200);
        pipe(&driver, "payment-events", failed(), 200);
    }
    driver.run_until_idle().unwrap();
    pipe(&driver, "order-events", confirmed(9_999), 20);
    driver.run_until_idle().unwrap();

    assert_eq!(dead_letters(&mut driver), 0);
    let aggregates = minute_aggregates(&mut driver);
    let find = |metric: AnalyticsMetric, start_seconds: i64| -> WindowAggregate {
        aggregates
            .iter()
            .find(|aggregate| {
                aggregate.metric == metric
                    && aggregate.window_start.as_unix_millis() == BASE + start_seconds * 1_000
                    && (aggregate.metric != AnalyticsMetric::Revenue
                        || aggregate.window_key.starts_with("revenue/USD/"))
            })
            .unwrap_or_else(|| {
                panic!("no {metric:?} aggregate at {start_seconds}s in {aggregates:#?}")
            })
            .clone()
    };
    let confirmed_minute_0 = find(AnalyticsMetric::OrdersConfirmed, 0);
    assert_eq!(
        confirmed_minute_0.count, 3,
        "10 s, 30 s and the late 55 s; not the too-late 20 s"
    );
    assert!(confirmed_minute_0.is_final);
    assert_eq!(find(AnalyticsMetric::Revenue, 0).amount, Some(usd(3_600)));
    assert_eq!(find(AnalyticsMetric::OrdersRejected, 0).count, 1);
    assert_eq!(find(AnalyticsMetric::PaymentsSucceeded, 0).count, 1);
    assert_eq!(find(AnalyticsMetric::PaymentsFailed, 0).count, 1);
    assert_eq!(find(AnalyticsMetric::OrdersConfirmed, 60).count, 1);
    // Each window's final result is emitted once.
    let finals_for_minute_0 = aggregates
        .iter()
        .filter(|aggregate| aggregate.window_key == format!("orders_confirmed/all/1m/{BASE}"))
        .count();
    assert_eq!(finals_for_minute_0, 1);

    // The export wrote the raw order events and the aggregates, rotating small files.
    let files: Vec<String> = std::fs::read_dir(export.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        files.iter().any(|name| name.starts_with("aggregates-")),
        "{files:?}"
    );
    assert!(
        files
            .iter()
            .filter(|name| name.starts_with("order-events-"))
            .count()
            > 1,
        "{files:?}"
    );
    let exported_events: usize = files
        .iter()
        .filter(|name| name.starts_with("order-events-"))
        .map(|name| {
            std::fs::read_to_string(export.path().join(name))
                .unwrap()
                .lines()
                .count()
        })
        .sum();
    assert_eq!(exported_events, 26);
}

#[test]
fn a_window_is_reported_even_when_the_next_fact_comes_long_after_it_closed() {
    let options = AnalyticsOptions::default();
    let mut driver = TopologyTestDriver::new(analytics::topology(&options).unwrap()).unwrap();
    pipe(&driver, "order-events", confirmed(100), 10);
    driver.run_until_idle().unwrap();
    // Ten minutes of silence, then the next confirmation: minute 0 must still be reported.
    pipe(&driver, "order-events", confirmed(100), 600);
    driver.run_until_idle().unwrap();
    let aggregates = minute_aggregates(&mut driver);
    assert!(
        aggregates.iter().any(|aggregate| aggregate.window_key
            == format!("orders_confirmed/all/1m/{BASE}")
            && aggregate.count == 1),
        "{aggregates:#?}"
    );
}

#[test]
fn refunds_reduce_revenue_only_for_orders_that_were_confirmed() {
    let options = AnalyticsOptions::default();
    let mut driver = TopologyTestDriver::new(analytics::topology(&options).unwrap()).unwrap();
    let order = OrderId::generate(BASE);
    let refund = |order_id| {
        PaymentEvent::PaymentRefunded(
            orderflow_schemas::messages::payment_events::PaymentRefunded {
                order_id,
                payment_id: PaymentId::generate(BASE),
                amount: usd(1_000),
                provider_reference: "re".to_string(),
                reason: "cancelled".to_string(),
            },
        )
    };
    // Its lines (no catalog here: their category is "uncategorized").
    let line = |name: &str, quantity: u32, total: i64| PricedLine {
        sku: Sku::parse(name).unwrap(),
        quantity,
        unit_price: usd(total / i64::from(quantity)),
        line_total: usd(total),
    };
    let created = |order_id| {
        OrderEvent::OrderCreated(OrderCreated {
            order_id,
            user_id: UserId::generate(BASE),
            lines: vec![line("MUG", 2, 600), line("PEN", 1, 400)],
            currency: Currency::parse("USD").unwrap(),
            coupon_code: None,
            totals: OrderTotals {
                subtotal: usd(1_000),
                discount: usd(0),
                tax: usd(0),
                shipping: usd(0),
                total: usd(1_000),
            },
            shipping_address: ShippingAddress {
                name: "Ada Lovelace".to_string(),
                line1: "1 Analytical St".to_string(),
                line2: None,
                city: "London".to_string(),
                postal_code: "N1".to_string(),
                country: CountryCode::parse("US").unwrap(),
                region: None,
            },
        })
    };
    let confirmation = |order_id| {
        OrderEvent::OrderConfirmed(OrderConfirmed {
            order_id,
            user_id: UserId::generate(BASE),
            payment_id: PaymentId::generate(BASE),
            total: usd(1_000),
        })
    };
    // Created, confirmed and refunded at 4, 5 and 6 s; then the same for another order ten
    // minutes later, whose facts (same groups, so same partitions) close minute 0.
    for (order_id, at) in [(order, 0), (OrderId::generate(BASE + 2), 600)] {
        pipe(&driver, "order-events", created(order_id), at + 4);
        pipe(&driver, "order-events", confirmation(order_id), at + 5);
        driver.run_until_idle().unwrap();
        pipe(&driver, "payment-events", refund(order_id), at + 6);
        if at == 0 {
            // A refund of a late charge for an order never confirmed: nothing to take back.
            pipe(
                &driver,
                "payment-events",
                refund(OrderId::generate(BASE + 1)),
                7,
            );
        }
        driver.run_until_idle().unwrap();
    }
    let aggregates = minute_aggregates(&mut driver);
    let window = |key: &str| {
        aggregates
            .iter()
            .rev()
            .find(|aggregate| aggregate.window_key == format!("{key}/1m/{BASE}"))
            .unwrap_or_else(|| panic!("no {key} in {aggregates:#?}"))
    };
    assert_eq!(window("revenue/USD").amount, Some(usd(0)));
    // The category's revenue is net too, and the units come back as returned.
    assert_eq!(
        window("revenue/category:uncategorized:USD").amount,
        Some(usd(0))
    );
    assert_eq!(window("units_sold/sku:MUG").count, 2);
    assert_eq!(window("units_returned/sku:MUG").count, 2);
    assert_eq!(window("units_returned/sku:PEN").count, 1);
}

#[test]
fn hour_windows_sum_their_panes_and_each_is_reported_once() {
    let options = AnalyticsOptions::default();
    let mut driver = TopologyTestDriver::new(analytics::topology(&options).unwrap()).unwrap();
    // BASE is an hour boundary. Confirmations at 5, 25, 55 and 61 minutes, each processed
    // before the next arrives (records of different partitions would otherwise be taken in
    // any order, and a fact behind stream time by more than the grace misses closed windows).
    for (minutes, amount) in [(5, 100), (25, 200), (55, 400), (61, 1)] {
        pipe(&driver, "order-events", confirmed(amount), minutes * 60);
        driver.run_until_idle().unwrap();
    }
    // Every window containing 5 minutes closed at 1 h 0 min 30 s at the latest: too late.
    pipe(&driver, "order-events", confirmed(9_999), 5 * 60);
    driver.run_until_idle().unwrap();
    // Three hours in: every window containing the facts above has closed.
    pipe(&driver, "order-events", confirmed(1), 3 * 3600);
    driver.run_until_idle().unwrap();

    let hours = aggregates_matching(&mut driver, "/60m/");
    let reported = |key_prefix: &str, start_minutes: i64| -> Vec<&WindowAggregate> {
        let key = format!("{key_prefix}/60m/{}", BASE + start_minutes * 60_000);
        hours
            .iter()
            .filter(|aggregate| aggregate.window_key == key)
            .collect()
    };
    // (window start in minutes, confirmations, revenue): a window holds the facts of its six
    // panes, and only those; each is reported once, final.
    for (start, count, amount) in [
        (-50, 1, 100),
        (-40, 1, 100),
        (-30, 2, 300),
        (-20, 2, 300),
        (-10, 2, 300),
        (0, 3, 700),
        (10, 3, 601),
        (20, 3, 601),
        (30, 2, 401),
        (40, 2, 401),
        (50, 2, 401),
        (60, 1, 1),
    ] {
        let confirmations = reported("orders_confirmed/all", start);
        assert_eq!(confirmations.len(), 1, "window {start}: {confirmations:#?}");
        assert_eq!(confirmations[0].count, count, "window {start}");
        assert!(confirmations[0].is_final);
        let revenue = reported("revenue/USD", start);
        assert_eq!(revenue.len(), 1, "window {start}: {revenue:#?}");
        assert_eq!(revenue[0].amount, Some(usd(amount)), "window {start}");
    }
    // The windows around three hours are still open.
    assert!(reported("orders_confirmed/all", 180).is_empty());
}

#[test]
fn an_hour_window_armed_before_panes_reports_its_carried_total_plus_what_came_after() {
    use orderflow_processors::analytics::WindowTotal;
    use orderflow_state_stores::{Codec, CompactCodec};
    let options = AnalyticsOptions::default();
    let mut driver = TopologyTestDriver::new(analytics::topology(&options).unwrap()).unwrap();
    // An older build left the hour window starting at BASE with 5 confirmations in its timer
    // (an indexed timer carrying the running total), and nothing in the panes.
    let fact_key = "orders_confirmed|all";
    let carried = CompactCodec
        .encode_to_vec(&WindowTotal {
            count: 5,
            amount: None,
        })
        .unwrap();
    driver
        .put_indexed_timer_carrying(
            "windows",
            fact_key.as_bytes(),
            orderflow_runtime::TimerKind::StreamTime,
            format!("1|{BASE}|{fact_key}").as_bytes(),
            BASE + 3_600_000 + 30_000,
            carried,
        )
        .unwrap();
    // Since the upgrade: one more confirmation in that window, then stream time moves on.
    pipe(&driver, "order-events", confirmed(100), 25 * 60);
    driver.run_until_idle().unwrap();
    pipe(&driver, "order-events", confirmed(100), 3 * 3600);
    driver.run_until_idle().unwrap();
    let reports = aggregates_matching(&mut driver, &format!("orders_confirmed/all/60m/{BASE}"));
    assert_eq!(reports.len(), 1, "reported once: {reports:#?}");
    assert_eq!(reports[0].count, 6, "5 carried and 1 since");
}
