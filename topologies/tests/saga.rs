//! The order saga end to end through the test driver (6 partitions per topic).

mod shop;

use orderflow_processors::order_saga::SagaConfig;
use orderflow_processors::payment::PaymentConfig;
use orderflow_runtime::TimerKind;
use orderflow_schemas::ids::UserId;
use orderflow_schemas::messages::catalog_commands::CouponKind;
use orderflow_schemas::messages::inventory_commands::{Commit, InventoryCommand};
use orderflow_schemas::messages::inventory_events::InventoryEvent;
use orderflow_schemas::messages::order_events::{LineRejectionReason, OrderEvent, OrderStatus};
use shop::{Shop, usd};

fn user() -> UserId {
    UserId::generate(1_767_225_600_000)
}

#[test]
fn a_paid_order_is_confirmed_and_its_stock_committed() {
    let mut shop = Shop::new();
    shop.add_product("WIDGET", 1_299, 10, 0);
    shop.add_product("GADGET", 500, 5, 0);
    let customer = user();
    let order = shop.place(customer, &[("WIDGET", 2), ("GADGET", 1)], "tok_visa", None);
    shop.run();
    assert_eq!(shop.status(order), OrderStatus::Confirmed);
    assert_eq!(
        shop.events_of(order),
        vec!["OrderCreated", "OrderConfirmed"]
    );
    let widget = shop.stock("WIDGET");
    assert_eq!(
        (widget.on_hand, widget.reserved, widget.committed),
        (8, 0, 2)
    );
    // The lines' reservation expiries and the order's deadlines were all cancelled.
    assert_eq!(shop.driver.queued_timers().unwrap(), 0);
    let charges = shop.provider.charges_of(&order);
    assert_eq!(charges.len(), 1);
    let OrderEvent::OrderCreated(created) = &shop.order_events[0] else {
        panic!("expected OrderCreated first");
    };
    // Server-side totals: 30.98 subtotal, 7.25% CA tax = 2.25 (2.24605 half-even), 4.99 shipping.
    assert_eq!(created.totals.subtotal, usd(3_098));
    assert_eq!(created.totals.tax, usd(225));
    assert_eq!(created.totals.shipping, usd(499));
    assert_eq!(charges[0], created.totals.total);

    shop.ship(order);
    shop.run();
    shop.deliver(order);
    shop.run();
    assert_eq!(shop.status(order), OrderStatus::Delivered);
}

#[test]
fn an_order_beyond_stock_is_rejected_and_what_was_reserved_is_released() {
    let mut shop = Shop::new();
    shop.add_product("WIDGET", 1_000, 10, 0);
    shop.add_product("RARE", 1_000, 1, 0);
    // A catalog product never restocked is out of stock, not unknown.
    shop.add_product("NEW", 1_000, 0, 0);
    let new = shop.place(user(), &[("NEW", 1)], "tok_visa", None);
    shop.run();
    assert_eq!(shop.status(new), OrderStatus::Rejected);
    let rejection = shop
        .order_events
        .iter()
        .find_map(|event| match event {
            OrderEvent::OrderRejected(rejected) if rejected.order_id == new => {
                Some(rejected.clone())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(
        rejection.reasons[0].reason,
        LineRejectionReason::InsufficientStock
    );
    assert_eq!(rejection.reasons[0].available, Some(0));

    let order = shop.place(user(), &[("WIDGET", 3), ("RARE", 2)], "tok_visa", None);
    shop.run();
    assert_eq!(shop.status(order), OrderStatus::Rejected);
    let rejection = shop
        .order_events
        .iter()
        .find_map(|event| match event {
            OrderEvent::OrderRejected(rejected) if rejected.order_id == order => {
                Some(rejected.clone())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(rejection.reasons.len(), 1);
    assert_eq!(
        rejection.reasons[0].reason,
        LineRejectionReason::InsufficientStock
    );
    assert_eq!(rejection.reasons[0].available, Some(1));
    let widget = shop.stock("WIDGET");
    assert_eq!(
        (widget.on_hand, widget.reserved),
        (10, 0),
        "the reserved widgets came back"
    );
    assert!(shop.provider.charges_of(&order).is_empty());
    // Released reservations' expiries and the order's deadline were cancelled.
    assert_eq!(shop.driver.queued_timers().unwrap(), 0);
}

#[test]
fn unknown_skus_are_rejected_before_anything_is_reserved() {
    let mut shop = Shop::new();
    shop.add_product("WIDGET", 1_000, 10, 0);
    let order = shop.place(user(), &[("WIDGET", 1), ("NOPE", 1)], "tok_visa", None);
    shop.run();
    assert_eq!(shop.status(order), OrderStatus::Rejected);
    assert_eq!(shop.events_of(order), vec!["OrderRejected"]);
    assert_eq!(shop.stock("WIDGET").reserved, 0);
}

#[test]
fn a_declined_payment_fails_the_order_and_releases_stock() {
    let mut shop = Shop::new();
    shop.add_product("WIDGET", 1_000, 10, 0);
    let order = shop.place(user(), &[("WIDGET", 4)], "tok_decline", None);
    shop.run();
    assert_eq!(shop.status(order), OrderStatus::PaymentFailed);
    assert_eq!(
        shop.events_of(order),
        vec!["OrderCreated", "OrderPaymentFailed"]
    );
    let widget = shop.stock("WIDGET");
    assert_eq!(
        (widget.on_hand, widget.reserved, widget.committed),
        (10, 0, 0)
    );
    assert_eq!(shop.driver.queued_timers().unwrap(), 0);
}

#[test]
fn transient_provider_errors_are_retried_on_timers_and_charge_once() {
    let mut shop = Shop::new();
    shop.add_product("WIDGET", 1_000, 10, 0);
    let order = shop.place(user(), &[("WIDGET", 1)], "tok_flaky", None);
    shop.run();
    assert_eq!(shop.status(order), OrderStatus::AwaitingPayment);
    // Two retries, each after its backoff (at most 200 ms * 2 + 20% jitter).
    shop.advance(300);
    shop.advance(600);
    assert_eq!(shop.status(order), OrderStatus::Confirmed);
    assert_eq!(shop.provider.charges_of(&order).len(), 1);
    assert_eq!(shop.driver.queued_timers().unwrap(), 0);
}

#[test]
fn a_provider_that_keeps_timing_out_fails_the_payment_after_the_last_attempt() {
    let mut shop = Shop::new();
    shop.add_product("WIDGET", 1_000, 10, 0);
    let order = shop.place(user(), &[("WIDGET", 1)], "tok_timeout", None);
    shop.run();
    for _ in 0..10 {
        shop.advance(2_000);
    }
    assert_eq!(shop.status(order), OrderStatus::PaymentFailed);
    let attempts = shop
        .payment_events
        .iter()
        .find_map(|event| match event {
            orderflow_schemas::messages::payment_events::PaymentEvent::PaymentFailed(failed) => {
                Some(failed.attempt)
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(attempts, PaymentConfig::default().max_attempts);
    assert_eq!(shop.stock("WIDGET").reserved, 0);
}

/// A payment deadline of 500 ms and a first retry after a second; WIDGET in stock.
fn shop_with_a_payment_deadline_before_the_first_retry() -> Shop {
    let saga = SagaConfig {
        payment_deadline_ms: 500,
        ..SagaConfig::default()
    };
    let payment = PaymentConfig {
        backoff_initial_ms: 1_000,
        ..PaymentConfig::default()
    };
    let mut shop = Shop::with_configs(saga, payment, 6);
    shop.add_product("WIDGET", 1_000, 10, 0);
    shop
}

#[test]
fn the_payment_deadline_ends_a_stuck_order_and_no_charge_follows() {
    let mut shop = shop_with_a_payment_deadline_before_the_first_retry();
    // The provider fails twice, then would approve: the deadline passes before the retry.
    let order = shop.place(user(), &[("WIDGET", 1)], "tok_flaky", None);
    shop.run();
    shop.advance(600);
    assert_eq!(shop.status(order), OrderStatus::PaymentFailed);
    assert_eq!(shop.stock("WIDGET").reserved, 0);
    // The saga cancelled the charge: the retries that would have charged are lookups now,
    // which find nothing, so the customer is neither charged nor refunded.
    for _ in 0..10 {
        shop.advance(3_000);
    }
    assert!(shop.provider.charges_of(&order).is_empty());
    assert!(shop.provider.refunds_of(&order).is_empty());
    assert!(!shop.orders()[&order].refunded);
}

#[test]
fn a_charge_whose_answer_was_lost_is_found_after_the_deadline_and_refunded() {
    let mut shop = shop_with_a_payment_deadline_before_the_first_retry();
    // The first call charges, but its answer never arrives (a timeout).
    let order = shop.place(user(), &[("WIDGET", 1)], "tok_lost_answer", None);
    shop.run();
    shop.advance(600);
    assert_eq!(shop.status(order), OrderStatus::PaymentFailed);
    for _ in 0..10 {
        shop.advance(3_000);
    }
    // The lookup found the charge (no second charge was made) and the saga paid it back.
    assert_eq!(shop.provider.charges_of(&order).len(), 1);
    assert_eq!(shop.provider.refunds_of(&order).len(), 1);
    assert!(shop.orders()[&order].refunded);
    assert_eq!(shop.status(order), OrderStatus::PaymentFailed);
}

#[test]
fn a_customer_cancel_while_the_payment_is_retried_stops_the_charge() {
    let payment = PaymentConfig {
        backoff_initial_ms: 1_000,
        ..PaymentConfig::default()
    };
    let mut shop = Shop::with_configs(SagaConfig::default(), payment, 6);
    shop.add_product("WIDGET", 1_000, 10, 0);
    let customer = user();
    let order = shop.place(customer, &[("WIDGET", 1)], "tok_flaky", None);
    shop.run();
    assert_eq!(shop.status(order), OrderStatus::AwaitingPayment);
    shop.cancel(order, customer);
    shop.run();
    assert_eq!(shop.status(order), OrderStatus::Cancelled);
    for _ in 0..10 {
        shop.advance(3_000);
    }
    assert!(shop.provider.charges_of(&order).is_empty());
    assert!(shop.provider.refunds_of(&order).is_empty());
    assert_eq!(shop.stock("WIDGET").reserved, 0);
}

/// An order stored by a build whose deadlines were indexed timers keeps no deadline time: the
/// saga cancels its deadline through the index, and this build's fixed deadline, which the
/// older state does not name, fires later and changes nothing.
#[test]
fn an_order_stored_by_an_older_build_still_completes_and_its_deadline_does_nothing() {
    let payment = PaymentConfig {
        backoff_initial_ms: 1_000,
        ..PaymentConfig::default()
    };
    let mut shop = Shop::with_configs(SagaConfig::default(), payment, 6);
    shop.add_product("WIDGET", 1_000, 10, 0);
    let order = shop.place(user(), &[("WIDGET", 1)], "tok_flaky", None);
    shop.run();
    assert_eq!(shop.status(order), OrderStatus::AwaitingPayment);
    let due = shop.orders()[&order].deadline_at_ms.unwrap();
    // What the older build left: its state without the time, and an indexed deadline.
    shop.store_as_older_build(order);
    shop.driver
        .put_indexed_timer(
            "order-saga",
            order.to_string().as_bytes(),
            TimerKind::WallClock,
            format!("{order}:payment-deadline").as_bytes(),
            due,
        )
        .unwrap();
    for _ in 0..5 {
        shop.advance(3_000); // the retries go on and the charge succeeds
    }
    assert_eq!(shop.status(order), OrderStatus::Confirmed);
    // The indexed deadline was cancelled; the fixed one, unnamed by the older state, is left.
    assert_eq!(shop.driver.queued_timers().unwrap(), 1);
    shop.advance(SagaConfig::default().payment_deadline_ms);
    assert_eq!(shop.status(order), OrderStatus::Confirmed);
    assert_eq!(shop.driver.queued_timers().unwrap(), 0);
    assert_eq!(shop.provider.refunds_of(&order).len(), 0);
}

#[test]
fn a_customer_cancel_after_confirmation_returns_stock_and_refunds() {
    let mut shop = Shop::new();
    shop.add_product("WIDGET", 1_000, 10, 0);
    let customer = user();
    let order = shop.place(customer, &[("WIDGET", 3)], "tok_visa", None);
    shop.run();
    assert_eq!(shop.status(order), OrderStatus::Confirmed);
    // Another user cannot cancel it.
    shop.cancel(order, UserId::generate(shop.now() + 1));
    shop.run();
    assert_eq!(shop.status(order), OrderStatus::Confirmed);
    shop.cancel(order, customer);
    shop.run();
    assert_eq!(shop.status(order), OrderStatus::Cancelled);
    let widget = shop.stock("WIDGET");
    assert_eq!(
        (widget.on_hand, widget.reserved, widget.committed),
        (10, 0, 0)
    );
    assert_eq!(shop.provider.refunds_of(&order).len(), 1);
    // A duplicate Commit of the returned line (a redelivery, a DLQ replay) takes nothing.
    shop.pipe(
        "inventory-commands",
        InventoryCommand::Commit(Commit {
            order_id: order,
            line_index: 0,
            sku: shop::sku("WIDGET"),
        }),
    );
    shop.run();
    let widget = shop.stock("WIDGET");
    assert_eq!(
        (widget.on_hand, widget.reserved, widget.committed),
        (10, 0, 0)
    );
    // Shipping a cancelled order is refused, with the reason.
    shop.ship(order);
    shop.run();
    assert_eq!(
        shop.events_of(order),
        vec![
            "OrderCreated",
            "OrderConfirmed",
            "TransitionRefused",
            "OrderCancelled",
            "TransitionRefused"
        ]
    );
}

#[test]
fn a_price_change_never_alters_an_order_already_created() {
    let mut shop = Shop::new();
    shop.add_product("WIDGET", 1_000, 10, 0);
    let order = shop.place(user(), &[("WIDGET", 1)], "tok_visa", None);
    shop.run();
    shop.change_price("WIDGET", 5_000);
    let later = shop.place(user(), &[("WIDGET", 1)], "tok_visa", None);
    shop.run();
    let orders = shop.orders();
    assert_eq!(orders[&order].lines[0].unit_price, usd(1_000));
    assert_eq!(orders[&later].lines[0].unit_price, usd(5_000));
}

#[test]
fn coupons_discount_the_order_and_unknown_coupons_reject_it() {
    let mut shop = Shop::new();
    shop.add_product("WIDGET", 10_000, 10, 0);
    shop.add_coupon(
        "TENOFF",
        CouponKind::Percentage {
            basis_points: 1_000,
        },
    );
    let order = shop.place(user(), &[("WIDGET", 1)], "tok_visa", Some("TENOFF"));
    let bad = shop.place(user(), &[("WIDGET", 1)], "tok_visa", Some("NOSUCH"));
    shop.run();
    let orders = shop.orders();
    let totals = orders[&order].totals.clone().unwrap();
    assert_eq!(totals.discount, usd(1_000));
    assert_eq!(totals.shipping, usd(0), "9,000 after discount ships free");
    assert_eq!(orders[&bad].status, OrderStatus::Rejected);
}

#[test]
fn stock_low_is_emitted_once_per_crossing() {
    let mut shop = Shop::new();
    shop.add_product("WIDGET", 100, 10, 5);
    for _ in 0..4 {
        shop.place(user(), &[("WIDGET", 2)], "tok_visa", None);
        shop.run();
    }
    let lows = |shop: &Shop| {
        shop.inventory_events
            .iter()
            .filter(|event| matches!(event, InventoryEvent::StockLow(_)))
            .count()
    };
    assert_eq!(lows(&shop), 1, "10 -> 2 crosses the threshold of 5 once");
    shop.restock("WIDGET", 20);
    shop.run();
    shop.place(user(), &[("WIDGET", 19)], "tok_visa", None);
    shop.run();
    assert_eq!(
        lows(&shop),
        2,
        "back above, then below again: a second crossing"
    );
    // Low means at or below: landing exactly on the threshold is a crossing too.
    shop.add_product("GADGET", 100, 6, 4);
    shop.place(user(), &[("GADGET", 2)], "tok_visa", None);
    shop.run();
    assert_eq!(lows(&shop), 3, "6 -> 4 reaches the threshold of 4");
}

#[test]
fn a_duplicate_place_order_is_refused_and_changes_nothing() {
    let mut shop = Shop::new();
    shop.add_product("WIDGET", 100, 10, 0);
    let customer = user();
    let order = shop.place(customer, &[("WIDGET", 1)], "tok_visa", None);
    shop.run();
    // The same order id again (an API retry that slipped through).
    let command = orderflow_schemas::messages::order_commands::OrderCommand::PlaceOrder(
        orderflow_schemas::messages::order_commands::PlaceOrder {
            order_id: order,
            user_id: customer,
            lines: vec![orderflow_schemas::messages::order_commands::OrderLine {
                sku: shop::sku("WIDGET"),
                quantity: 5,
            }],
            currency: orderflow_schemas::currency::Currency::parse("USD").unwrap(),
            coupon_code: None,
            shipping_address: shop.orders()[&order].shipping_address.clone(),
            payment_method_token: "tok_visa".to_string(),
        },
    );
    shop.pipe("order-commands", command);
    shop.run();
    assert_eq!(shop.stock("WIDGET").committed, 1);
    assert_eq!(shop.provider.charges_of(&order).len(), 1);
    assert_eq!(
        shop.events_of(order),
        vec!["OrderCreated", "OrderConfirmed", "TransitionRefused"]
    );
}

#[test]
fn an_expired_reservation_is_released_by_its_timer() {
    let saga = SagaConfig {
        reservation_ttl_ms: 1_000,
        payment_deadline_ms: 60_000,
        ..SagaConfig::default()
    };
    let payment = PaymentConfig {
        backoff_initial_ms: 5_000,
        ..PaymentConfig::default()
    };
    let mut shop = Shop::with_configs(saga, payment, 6);
    shop.add_product("WIDGET", 1_000, 10, 0);
    let order = shop.place(user(), &[("WIDGET", 2)], "tok_flaky", None);
    shop.run();
    assert_eq!(shop.stock("WIDGET").reserved, 2);
    // The line's expiry, the order's payment deadline and the payment's retry.
    assert_eq!(shop.driver.queued_timers().unwrap(), 3);
    shop.advance(1_500); // the reservation expires while the payment is being retried
    assert_eq!(shop.stock("WIDGET").reserved, 0);
    assert_eq!(shop.status(order), OrderStatus::Rejected);
    for _ in 0..5 {
        shop.advance(10_000);
    }
    // The late charge was refunded.
    assert_eq!(
        shop.provider.charges_of(&order).len(),
        shop.provider.refunds_of(&order).len()
    );
}

#[test]
fn an_ambiguous_give_up_fails_the_order_and_never_charges_after() {
    // Two calls without a definite answer end the order. The provider would approve a third
    // charge call (same key), so none is made: only lookups, which find no charge.
    let payment = PaymentConfig {
        max_attempts: 2,
        ..PaymentConfig::default()
    };
    let mut shop = Shop::with_configs(SagaConfig::default(), payment, 6);
    shop.add_product("WIDGET", 1_000, 10, 0);
    let order = shop.place(user(), &[("WIDGET", 1)], "tok_flaky", None);
    shop.run();
    shop.advance(300);
    assert_eq!(shop.status(order), OrderStatus::PaymentFailed);
    assert_eq!(shop.stock("WIDGET").reserved, 0);
    for _ in 0..10 {
        shop.advance(1_000);
    }
    assert!(
        shop.provider.charges_of(&order).is_empty(),
        "no charge after the failure was reported"
    );
    assert!(shop.provider.refunds_of(&order).is_empty());

    // When a call that timed out did charge, the lookup finds it and the saga pays it back.
    let lost = shop.place(user(), &[("WIDGET", 1)], "tok_lost_answer", None);
    shop.run();
    shop.advance(300);
    assert_eq!(shop.status(lost), OrderStatus::PaymentFailed);
    for _ in 0..10 {
        shop.advance(1_000);
    }
    assert_eq!(shop.provider.charges_of(&lost).len(), 1, "charged once");
    assert_eq!(
        shop.provider.refunds_of(&lost).len(),
        1,
        "and the saga paid it back"
    );
    assert_eq!(shop.status(lost), OrderStatus::PaymentFailed);
}
