//! The catalog: products and coupons from admin commands, published as snapshot events that
//! every other processor reads through the `products` and `coupons` global tables.

use orderflow_runtime::{ProcessError, Processor, ProcessorContext, Record};
use orderflow_schemas::envelope::Envelope;
use orderflow_schemas::messages::catalog_commands::CatalogCommand;
use orderflow_schemas::messages::catalog_events::{
    CatalogEvent, CouponUpserted, PriceChanged, Product, ProductDiscontinued, ProductUpserted,
};
use orderflow_state_stores::KeyValueStore;

use crate::wire::Origin;

/// Store of the catalog processor: sku -> product.
pub const PRODUCT_STORE: &str = "catalog-products";
/// Store of the catalog processor: `coupon:<code>` (the command's key) -> the coupon's current
/// definition, for the admin API.
pub const COUPON_STORE: &str = "catalog-coupons";
/// Global table of products (sku -> product), fed by catalog-events.
pub const PRODUCTS_TABLE: &str = "products";
/// Global table of coupons (code -> coupon), fed by catalog-events.
pub const COUPONS_TABLE: &str = "coupons";

/// Keyed by sku (coupons by `coupon:<code>`): applies catalog commands, emits snapshots.
#[derive(Debug, Default)]
pub struct CatalogProcessor;

impl Processor for CatalogProcessor {
    type InKey = String;
    type InValue = Envelope<CatalogCommand>;
    type OutKey = String;
    type OutValue = Envelope<CatalogEvent>;

    fn process(
        &mut self,
        context: &mut ProcessorContext<'_, String, Envelope<CatalogEvent>>,
        record: Record<String, Envelope<CatalogCommand>>,
    ) -> Result<(), ProcessError> {
        let origin = Origin::caused_by(&record.value);
        let now = context.now_ms();
        let event = {
            let mut products = context.key_value_store::<String, Product>(PRODUCT_STORE)?;
            match record.value.payload {
                CatalogCommand::UpsertProduct(upsert) => {
                    let existing = products.get(&upsert.sku.to_string())?;
                    // Discontinuing is final: an upsert does not bring a product back (and a
                    // discontinued product is never active, which its event's schema checks).
                    let discontinued = existing.is_some_and(|product| product.discontinued);
                    let product = Product {
                        sku: upsert.sku.clone(),
                        name: upsert.name,
                        description: upsert.description,
                        category: upsert.category,
                        price: upsert.price,
                        active: upsert.active && !discontinued,
                        discontinued,
                        low_stock_threshold: upsert.low_stock_threshold,
                    };
                    products.put(&product.sku.to_string(), &product)?;
                    CatalogEvent::ProductUpserted(ProductUpserted {
                        sku: upsert.sku,
                        product,
                    })
                }
                CatalogCommand::ChangePrice(change) => {
                    let Some(mut product) = products.get(&change.sku.to_string())? else {
                        return Err(ProcessError::invalid(format!(
                            "cannot change the price of unknown sku {}",
                            change.sku
                        )));
                    };
                    if product.price.currency != change.price.currency {
                        return Err(ProcessError::invalid(format!(
                            "sku {} is priced in {}, not {}",
                            change.sku, product.price.currency, change.price.currency
                        )));
                    }
                    let old_price = product.price;
                    product.price = change.price;
                    products.put(&product.sku.to_string(), &product)?;
                    CatalogEvent::PriceChanged(PriceChanged {
                        sku: change.sku,
                        old_price,
                        new_price: change.price,
                        product,
                    })
                }
                CatalogCommand::Discontinue(discontinue) => {
                    let Some(mut product) = products.get(&discontinue.sku.to_string())? else {
                        return Err(ProcessError::invalid(format!(
                            "cannot discontinue unknown sku {}",
                            discontinue.sku
                        )));
                    };
                    product.discontinued = true;
                    product.active = false;
                    products.put(&product.sku.to_string(), &product)?;
                    CatalogEvent::ProductDiscontinued(ProductDiscontinued {
                        sku: discontinue.sku,
                        product,
                    })
                }
                CatalogCommand::UpsertCoupon(coupon) => {
                    let upserted = CouponUpserted {
                        coupon_id: coupon.coupon_id,
                        code: coupon.code,
                        kind: coupon.kind,
                        valid_from: coupon.valid_from,
                        valid_until: coupon.valid_until,
                        minimum_basket: coupon.minimum_basket,
                    };
                    context
                        .key_value_store::<String, CouponUpserted>(COUPON_STORE)?
                        .put(&coupon_store_key(&upserted.code), &upserted)?;
                    CatalogEvent::CouponUpserted(upserted)
                }
            }
        };
        context.forward(Record::new(
            record.key,
            origin.envelope(event, now),
            record.timestamp,
        ));
        Ok(())
    }
}

/// The key of a coupon in [`COUPON_STORE`]: the key its commands carry, so the coupon lives in
/// the partition that processes them.
pub fn coupon_store_key(code: &orderflow_schemas::codes::CouponCode) -> String {
    format!("{}{code}", orderflow_schemas::catalog::COUPON_KEY_PREFIX)
}

/// The `products` global table's projection of a catalog event.
pub fn project_product(
    _key: String,
    event: Envelope<CatalogEvent>,
) -> Option<(String, Option<Product>)> {
    match event.payload {
        CatalogEvent::ProductUpserted(ProductUpserted { product, .. })
        | CatalogEvent::PriceChanged(PriceChanged { product, .. })
        | CatalogEvent::ProductDiscontinued(ProductDiscontinued { product, .. }) => {
            Some((product.sku.to_string(), Some(product)))
        }
        CatalogEvent::CouponUpserted(_) => None,
    }
}

/// The `coupons` global table's projection of a catalog event.
pub fn project_coupon(
    _key: String,
    event: Envelope<CatalogEvent>,
) -> Option<(String, Option<CouponUpserted>)> {
    match event.payload {
        CatalogEvent::CouponUpserted(coupon) => Some((coupon.code.to_string(), Some(coupon))),
        _ => None,
    }
}
