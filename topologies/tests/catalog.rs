//! The catalog topology through the test driver (its topics have several partitions):
//! products are created, repriced and discontinued (for good), coupons are kept for the admin
//! API, and commands that cannot apply go to the dead-letter topic without stopping the rest.

use orderflow_processors::catalog::{COUPON_STORE, PRODUCT_STORE};
use orderflow_processors::wire::envelope_serde;
use orderflow_runtime::TopologyTestDriver;
use orderflow_schemas::codes::{CouponCode, Sku};
use orderflow_schemas::currency::Currency;
use orderflow_schemas::envelope::{Envelope, Message};
use orderflow_schemas::ids::{CorrelationId, CouponId, EventId};
use orderflow_schemas::messages::catalog_commands::{
    CatalogCommand, ChangePrice, CouponKind, Discontinue, UpsertCoupon, UpsertProduct,
};
use orderflow_schemas::messages::catalog_events::{CatalogEvent, CouponUpserted, Product};
use orderflow_schemas::money::Money;
use orderflow_schemas::time::Timestamp;
use orderflow_topologies::catalog;

const NOW: i64 = 1_767_225_600_000;

fn money(amount: i64, currency: &str) -> Money {
    Money::new(amount, Currency::parse(currency).unwrap())
}

fn send(driver: &mut TopologyTestDriver, command: CatalogCommand) {
    let key = command.partition_key();
    let envelope = Envelope::new(
        command,
        Timestamp::from_unix_millis(NOW),
        CorrelationId::generate(NOW),
        None,
        EventId::generate(NOW),
    );
    driver
        .pipe(
            "catalog-commands",
            &envelope_serde::<CatalogCommand>(),
            &key,
            &envelope,
            NOW,
        )
        .unwrap();
    driver.run_until_idle().unwrap();
}

fn upsert(sku: &str, price: i64, active: bool) -> CatalogCommand {
    CatalogCommand::UpsertProduct(UpsertProduct {
        sku: Sku::parse(sku).unwrap(),
        name: format!("Product {sku}"),
        description: String::new(),
        category: "kitchen".to_string(),
        price: money(price, "USD"),
        active,
        low_stock_threshold: 5,
    })
}

fn product(driver: &TopologyTestDriver, sku: &str) -> Option<Product> {
    driver
        .store_entries::<String, Product>(PRODUCT_STORE)
        .unwrap()
        .into_iter()
        .find(|(key, _)| key == sku)
        .map(|(_, product)| product)
}

#[test]
fn products_are_repriced_and_discontinued_for_good_and_bad_commands_are_dead_lettered() {
    let mut driver = TopologyTestDriver::new(catalog::topology().unwrap()).unwrap();
    assert!(
        driver
            .topology()
            .topics()
            .iter()
            .any(|topic| topic.name == "catalog-commands" && topic.partitions > 1)
    );
    for sku in ["MUG", "PEN", "INK"] {
        send(&mut driver, upsert(sku, 1_000, true));
    }
    send(
        &mut driver,
        CatalogCommand::ChangePrice(ChangePrice {
            sku: Sku::parse("MUG").unwrap(),
            price: money(1_200, "USD"),
        }),
    );
    // Another currency, and an unknown SKU: refused, the rest goes on.
    send(
        &mut driver,
        CatalogCommand::ChangePrice(ChangePrice {
            sku: Sku::parse("MUG").unwrap(),
            price: money(900, "EUR"),
        }),
    );
    send(
        &mut driver,
        CatalogCommand::Discontinue(Discontinue {
            sku: Sku::parse("NOPE").unwrap(),
        }),
    );
    send(
        &mut driver,
        CatalogCommand::Discontinue(Discontinue {
            sku: Sku::parse("PEN").unwrap(),
        }),
    );
    // Upserting a discontinued product does not bring it back (its event says so, valid).
    send(&mut driver, upsert("PEN", 500, true));

    let mug = product(&driver, "MUG").unwrap();
    assert_eq!(mug.price, money(1_200, "USD"));
    assert!(mug.is_orderable());
    let pen = product(&driver, "PEN").unwrap();
    assert!(pen.discontinued && !pen.active, "{pen:?}");
    assert_eq!(pen.price, money(500, "USD"), "other fields still change");
    assert_eq!(
        driver.read_raw("catalog-commands.dlq").unwrap().len(),
        2,
        "the EUR repricing and the unknown SKU"
    );

    let events: Vec<CatalogEvent> = driver
        .read("catalog-events", &envelope_serde::<CatalogEvent>())
        .unwrap()
        .into_iter()
        .map(|record| record.value.payload)
        .collect();
    let repriced: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            CatalogEvent::PriceChanged(change) => Some(change),
            _ => None,
        })
        .collect();
    assert_eq!(repriced.len(), 1);
    assert_eq!(repriced[0].old_price, money(1_000, "USD"));
    assert_eq!(repriced[0].new_price, money(1_200, "USD"));
    assert_eq!(
        events
            .iter()
            .filter(|event| matches!(event, CatalogEvent::ProductDiscontinued(_)))
            .count(),
        1
    );
}

#[test]
fn coupons_are_published_and_kept_by_their_command_key() {
    let mut driver = TopologyTestDriver::new(catalog::topology().unwrap()).unwrap();
    for (code, basis_points) in [("SPRING", 1_000), ("SUMMER", 1_500), ("SPRING", 2_000)] {
        send(
            &mut driver,
            CatalogCommand::UpsertCoupon(UpsertCoupon {
                coupon_id: CouponId::generate(NOW),
                code: CouponCode::parse(code).unwrap(),
                kind: CouponKind::Percentage { basis_points },
                valid_from: Timestamp::from_unix_millis(NOW),
                valid_until: Timestamp::from_unix_millis(NOW + 1_000),
                minimum_basket: None,
            }),
        );
    }
    let mut coupons = driver
        .store_entries::<String, CouponUpserted>(COUPON_STORE)
        .unwrap();
    coupons.sort_by(|left, right| left.0.cmp(&right.0));
    let kept: Vec<(String, CouponKind)> = coupons
        .into_iter()
        .map(|(key, coupon)| (key, coupon.kind))
        .collect();
    assert_eq!(
        kept,
        vec![
            (
                "coupon:SPRING".to_string(),
                CouponKind::Percentage {
                    basis_points: 2_000
                }
            ),
            (
                "coupon:SUMMER".to_string(),
                CouponKind::Percentage {
                    basis_points: 1_500
                }
            ),
        ],
        "the latest definition per code"
    );
    let published = driver
        .read("catalog-events", &envelope_serde::<CatalogEvent>())
        .unwrap()
        .into_iter()
        .filter(|record| matches!(record.value.payload, CatalogEvent::CouponUpserted(_)))
        .count();
    assert_eq!(published, 3);
}
