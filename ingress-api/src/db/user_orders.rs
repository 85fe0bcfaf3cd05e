//! Which orders each user placed: the index behind `GET /orders` (newest first). Order ids
//! are UUIDv7, so their text order is their creation order.

use orderflow_schemas::ids::{OrderId, UserId};
use sqlx::Row;

use super::{Database, DbError, db_error};

impl Database {
    /// Records that `user_id` placed `order_id` (idempotent).
    pub async fn record_user_order(
        &self,
        user_id: UserId,
        order_id: OrderId,
        now_ms: i64,
    ) -> Result<(), DbError> {
        self.batcher()
            .index_order(user_id.to_string(), order_id.to_string(), now_ms)
            .await
    }

    /// Whether `user_id` placed `order_id`.
    pub async fn user_owns_order(
        &self,
        user_id: UserId,
        order_id: OrderId,
    ) -> Result<bool, DbError> {
        let row =
            sqlx::query("SELECT 1 AS owned FROM user_orders WHERE user_id = $1 AND order_id = $2")
                .bind(user_id.to_string())
                .bind(order_id.to_string())
                .fetch_optional(self.pool())
                .await
                .map_err(db_error("checking an order's owner"))?;
        Ok(row.is_some())
    }

    /// The user's orders, newest first, older than `before` when given.
    pub async fn user_orders(
        &self,
        user_id: UserId,
        before: Option<OrderId>,
        limit: u32,
    ) -> Result<Vec<OrderId>, DbError> {
        // No sentinel for "from the newest": under PostgreSQL's linguistic collations (the
        // default outside the C locale) a character such as `~` sorts *before* digits, and the
        // list would come back empty. Ids are fixed-format lowercase hex, so their order is the
        // same under every collation.
        let query = match before {
            Some(_) => {
                "SELECT order_id FROM user_orders WHERE user_id = $1 AND order_id < $2 \
                 ORDER BY order_id DESC LIMIT $3"
            }
            None => {
                "SELECT order_id FROM user_orders WHERE user_id = $1 \
                 ORDER BY order_id DESC LIMIT $2"
            }
        };
        let mut query = sqlx::query(query).bind(user_id.to_string());
        if let Some(before) = before {
            query = query.bind(before.to_string());
        }
        let rows = query
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(db_error("listing a user's orders"))?;
        rows.iter()
            .map(|row| {
                let id: String = row
                    .try_get("order_id")
                    .map_err(db_error("reading an order id"))?;
                id.parse().map_err(|error| DbError {
                    what: "decoding an order id",
                    source: sqlx::Error::Decode(format!("`{id}`: {error}").into()),
                })
            })
            .collect()
    }

    /// Every (user, order) of the index, for the one-time move to the atomic intake.
    pub async fn all_user_orders(&self) -> Result<Vec<(UserId, OrderId)>, DbError> {
        let rows = sqlx::query("SELECT user_id, order_id FROM user_orders")
            .fetch_all(self.pool())
            .await
            .map_err(db_error("reading the user order index"))?;
        rows.iter()
            .map(|row| {
                let user: String = row
                    .try_get("user_id")
                    .map_err(db_error("reading a user id"))?;
                let order: String = row
                    .try_get("order_id")
                    .map_err(db_error("reading an order id"))?;
                let decode = |what: &'static str, text: &str, error: String| DbError {
                    what,
                    source: sqlx::Error::Decode(format!("`{text}`: {error}").into()),
                };
                Ok((
                    user.parse()
                        .map_err(|error: orderflow_schemas::ids::IdError| {
                            decode("decoding a user id", &user, error.to_string())
                        })?,
                    order
                        .parse()
                        .map_err(|error: orderflow_schemas::ids::IdError| {
                            decode("decoding an order id", &order, error.to_string())
                        })?,
                ))
            })
            .collect()
    }
}
