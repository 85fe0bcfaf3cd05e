//! The saga's invariants, by property tests over random command sequences with crashes:
//! - no sku is ever reserved beyond its stock, and stock is never created or lost;
//! - no order is charged twice, and every charged order that ends cancelled, rejected or
//!   payment-failed is refunded;
//! - every order reaches a settled state (confirmed, or terminal) by its deadlines, even while
//!   inventory or payments do not answer at all (steps stall them; they answer late after);
//! - compensation runs only for steps that happened (a release follows a reservation, a refund
//!   follows a charge);
//! - total = subtotal - discount + tax + shipping for every order, with or without a coupon
//!   (percentage, fixed, or unknown: rejected), and the discount never exceeds the subtotal.

mod shop;

use std::collections::{HashMap, HashSet};

use orderflow_schemas::currency::Currency;
use orderflow_schemas::ids::{OrderId, UserId};
use orderflow_schemas::messages::catalog_commands::CouponKind;
use orderflow_schemas::messages::inventory_events::InventoryEvent;
use orderflow_schemas::messages::order_events::{OrderEvent, OrderStatus};
use orderflow_schemas::money::Money;
use proptest::prelude::*;
use shop::Shop;

const SKUS: [&str; 4] = ["ALPHA", "BRAVO", "CHARLIE", "DELTA"];
/// Codes the shop knows (a percentage and a fixed amount), and one it does not.
const COUPONS: [&str; 3] = ["TENOFF", "FIVEOFF", "NOSUCH"];
const TOKENS: [&str; 5] = [
    "tok_visa",
    "tok_decline",
    "tok_flaky",
    "tok_timeout",
    "tok_insufficient_funds",
];

#[derive(Debug, Clone)]
enum Step {
    Place {
        user: usize,
        lines: Vec<(usize, u32)>,
        token: usize,
        /// An index into [`COUPONS`], or none.
        coupon: Option<usize>,
    },
    Cancel {
        order: usize,
    },
    Ship {
        order: usize,
    },
    Restock {
        sku: usize,
        quantity: u32,
    },
    Run,
    CrashMidway,
    Advance {
        milliseconds: i64,
    },
    /// Inventory (0) or payments (1) stop answering, until [`Step::Resume`] or the end.
    Stall {
        consumer: usize,
    },
    Resume,
}

/// The topics whose consumers a [`Step::Stall`] stops: the inventory processor and the
/// payment processor (whose provider calls then wait too).
const STALLABLE: [&str; 2] = ["inventory-commands", "payment-commands"];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (
            0..3usize,
            proptest::collection::btree_map(0..SKUS.len(), 1..4u32, 1..4),
            0..TOKENS.len(),
            proptest::option::of(0..COUPONS.len()),
        )
            .prop_map(|(user, lines, token, coupon)| Step::Place {
                user,
                lines: lines.into_iter().collect(),
                token,
                coupon,
            }),
        2 => (0..20usize).prop_map(|order| Step::Cancel { order }),
        1 => (0..20usize).prop_map(|order| Step::Ship { order }),
        1 => (0..SKUS.len(), 1..6u32).prop_map(|(sku, quantity)| Step::Restock { sku, quantity }),
        3 => Just(Step::Run),
        2 => Just(Step::CrashMidway),
        2 => (100..5_000i64).prop_map(|milliseconds| Step::Advance { milliseconds }),
        1 => (0..STALLABLE.len()).prop_map(|consumer| Step::Stall { consumer }),
        1 => Just(Step::Resume),
    ]
}

/// `stocked`: every unit ever restocked, once all restocks are processed (at the end).
fn check_stock(shop: &Shop, stocked: Option<&HashMap<&str, u32>>) -> Result<(), TestCaseError> {
    for sku in SKUS {
        let level = shop.stock(sku);
        prop_assert!(
            level.reserved <= level.on_hand,
            "{sku} over-reserved: {level:?}"
        );
        let Some(stocked) = stocked else {
            continue;
        };
        prop_assert_eq!(
            level.on_hand + level.committed,
            stocked[sku],
            "{} units appeared or vanished: {:?}",
            sku,
            level
        );
    }
    Ok(())
}

fn run_scenario(initial_stock: Vec<u32>, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut shop = Shop::new();
    let mut stocked: HashMap<&str, u32> = HashMap::new();
    for (sku, stock) in SKUS.iter().zip(&initial_stock) {
        shop.add_product(sku, 1_000 + *stock as i64 * 7, *stock, 2);
        stocked.insert(sku, *stock);
    }
    shop.add_coupon(
        COUPONS[0],
        CouponKind::Percentage {
            basis_points: 1_000,
        },
    );
    shop.add_coupon(
        COUPONS[1],
        CouponKind::Fixed {
            amount: Money::new(500, Currency::parse("USD").unwrap()),
        },
    );
    let users: Vec<UserId> = (0..3)
        .map(|index| UserId::generate(shop.now() + index))
        .collect();
    let mut orders: Vec<(OrderId, UserId)> = Vec::new();
    for step in steps {
        match step {
            Step::Place {
                user,
                lines,
                token,
                coupon,
            } => {
                let lines: Vec<(&str, u32)> = lines
                    .iter()
                    .map(|(sku, quantity)| (SKUS[*sku], *quantity))
                    .collect();
                let coupon = coupon.map(|index| COUPONS[index]);
                let order = shop.place(users[user], &lines, TOKENS[token], coupon);
                orders.push((order, users[user]));
            }
            Step::Cancel { order } => {
                if let Some((order, user)) = orders.get(order).copied() {
                    shop.cancel(order, user);
                }
            }
            Step::Ship { order } => {
                if let Some((order, _)) = orders.get(order).copied() {
                    shop.ship(order);
                }
            }
            Step::Restock { sku, quantity } => {
                shop.restock(SKUS[sku], quantity);
                *stocked.get_mut(SKUS[sku]).unwrap() += quantity;
            }
            Step::Run => shop.run(),
            Step::CrashMidway => {
                // Work done but not committed is lost; the tasks reopen at their last commit.
                shop.driver.process_once().unwrap();
                shop.driver.crash().unwrap();
            }
            Step::Advance { milliseconds } => shop.advance(milliseconds),
            Step::Stall { consumer } => shop.driver.stall(STALLABLE[consumer]),
            Step::Resume => shop.driver.resume_all(),
        }
        check_stock(&shop, None)?;
    }
    // Every order settles by its deadlines, even if a stalled step never answers: the
    // reservation deadline (30 s from placement), then the payment deadline (2 min from the
    // last reservation); stalls stay on meanwhile.
    shop.run();
    let saga = orderflow_processors::order_saga::SagaConfig::default();
    shop.advance(saga.reservation_deadline_ms + 1);
    shop.advance(saga.payment_deadline_ms + 1);
    let states = shop.orders();
    for (order, _) in &orders {
        if let Some(state) = states.get(order) {
            prop_assert!(
                !matches!(
                    state.status,
                    OrderStatus::Pending | OrderStatus::Reserving | OrderStatus::AwaitingPayment
                ),
                "order {} still {:?} after its deadlines",
                order,
                state.status
            );
        }
    }
    // Then the stalled steps answer, late; let every timer run out (reservation TTL 15 min).
    shop.driver.resume_all();
    shop.run();
    for _ in 0..20 {
        shop.advance(60_000);
    }
    check_stock(&shop, Some(&stocked))?;

    let states = shop.orders();
    let mut committed_by_sku: HashMap<String, u32> = HashMap::new();
    for (order, _) in &orders {
        let Some(state) = states.get(order) else {
            continue; // placed after the last commit of a crash and never reprocessed? impossible
        };
        prop_assert!(
            !matches!(
                state.status,
                OrderStatus::Pending | OrderStatus::Reserving | OrderStatus::AwaitingPayment
            ),
            "order {} stuck in {:?}",
            order,
            state.status
        );
        let charges = shop.provider.charges_of(order).len();
        let refunds = shop.provider.refunds_of(order).len();
        prop_assert!(charges <= 1, "order {order} charged {charges} times");
        prop_assert!(
            refunds <= charges,
            "order {order} refunded without a charge"
        );
        match state.status {
            OrderStatus::Confirmed | OrderStatus::Shipped | OrderStatus::Delivered => {
                prop_assert_eq!(charges, 1);
                prop_assert_eq!(refunds, 0);
                for line in &state.lines {
                    *committed_by_sku.entry(line.sku.to_string()).or_default() += line.quantity;
                }
            }
            _ => prop_assert_eq!(
                refunds,
                charges,
                "order {} ended {:?} without its refund",
                order,
                state.status
            ),
        }
        if let Some(totals) = &state.totals {
            prop_assert!(totals.discount.amount_minor >= 0);
            prop_assert!(totals.discount.amount_minor <= totals.subtotal.amount_minor);
            prop_assert_eq!(
                totals.total.amount_minor,
                totals.subtotal.amount_minor - totals.discount.amount_minor
                    + totals.tax.amount_minor
                    + totals.shipping.amount_minor
            );
        }
    }
    // Stock sold is exactly what the confirmed orders bought.
    for sku in SKUS {
        prop_assert_eq!(
            shop.stock(sku).committed,
            committed_by_sku.get(sku).copied().unwrap_or(0),
            "{}",
            sku
        );
    }
    // Compensation only for steps that happened: each release follows a reservation, once.
    let mut reserved = HashSet::new();
    let mut released = HashSet::new();
    for event in &shop.inventory_events {
        match event {
            InventoryEvent::StockReserved(event) => {
                reserved.insert((event.order_id, event.line_index));
            }
            InventoryEvent::StockReleased(event) => {
                let line = (event.order_id, event.line_index);
                prop_assert!(
                    reserved.contains(&line),
                    "released {line:?} that was never reserved"
                );
                prop_assert!(released.insert(line), "released {line:?} twice");
            }
            _ => {}
        }
    }
    for event in &shop.order_events {
        if let OrderEvent::OrderCreated(created) = event {
            let totals = &created.totals;
            prop_assert_eq!(
                totals.total.amount_minor,
                totals.subtotal.amount_minor - totals.discount.amount_minor
                    + totals.tax.amount_minor
                    + totals.shipping.amount_minor
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn saga_invariants_hold_under_random_commands_and_crashes(
        initial_stock in proptest::collection::vec(0..8u32, SKUS.len()),
        steps in proptest::collection::vec(step(), 1..40),
    ) {
        run_scenario(initial_stock, steps)?;
    }
}
