//! Users and their credentials. Every change also writes its event to the outbox, in the same
//! transaction (see [`super::outbox`]).

use orderflow_schemas::ids::UserId;
use orderflow_schemas::messages::user_events::{
    NotificationChannels, NotificationPreferences, UserCreated, UserEvent, UserField, UserRole,
    UserUpdated,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::outbox::enqueue;
use super::{Database, DbError, db_error, is_unique_violation};

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: UserId,
    pub email: String,
    pub password_hash: String,
    pub role: UserRole,
    pub name: String,
    pub phone: Option<String>,
    pub locale: String,
    pub channels: NotificationChannels,
    pub preferences: NotificationPreferences,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("a user with email {0} already exists")]
    EmailTaken(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

pub fn role_name(role: UserRole) -> &'static str {
    match role {
        UserRole::Customer => "customer",
        UserRole::Admin => "admin",
    }
}

pub fn parse_role(text: &str) -> Option<UserRole> {
    match text {
        "customer" => Some(UserRole::Customer),
        "admin" => Some(UserRole::Admin),
        _ => None,
    }
}

fn from_row(row: &AnyRow) -> Result<UserRecord, DbError> {
    let read = |source| DbError {
        what: "reading a user row",
        source,
    };
    let id: String = row.try_get("id").map_err(read)?;
    let role: String = row.try_get("role").map_err(read)?;
    let channels: String = row.try_get("channels").map_err(read)?;
    let preferences: String = row.try_get("preferences").map_err(read)?;
    let corrupt = |reason: String| DbError {
        what: "decoding a user row",
        source: sqlx::Error::Decode(reason.into()),
    };
    Ok(UserRecord {
        id: id
            .parse::<UserId>()
            .map_err(|error| corrupt(format!("user id `{id}`: {error}")))?,
        email: row.try_get("email").map_err(read)?,
        password_hash: row.try_get("password_hash").map_err(read)?,
        role: parse_role(&role).ok_or_else(|| corrupt(format!("role `{role}`")))?,
        name: row.try_get("name").map_err(read)?,
        phone: row.try_get("phone").map_err(read)?,
        locale: row.try_get("locale").map_err(read)?,
        channels: serde_json::from_str(&channels)
            .map_err(|error| corrupt(format!("channels `{channels}`: {error}")))?,
        preferences: serde_json::from_str(&preferences)
            .map_err(|error| corrupt(format!("preferences `{preferences}`: {error}")))?,
        created_at_ms: row.try_get("created_at_ms").map_err(read)?,
        updated_at_ms: row.try_get("updated_at_ms").map_err(read)?,
    })
}

const COLUMNS: &str = "id, email, password_hash, role, name, phone, locale, channels, \
                       preferences, created_at_ms, updated_at_ms";

impl Database {
    /// Inserts the user and its `UserCreated` outbox event atomically.
    pub async fn create_user(&self, user: &UserRecord) -> Result<(), CreateUserError> {
        let mut transaction = self
            .pool()
            .begin()
            .await
            .map_err(db_error("starting a transaction"))?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO users ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(user.id.to_string())
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(role_name(user.role))
        .bind(&user.name)
        .bind(user.phone.clone())
        .bind(&user.locale)
        .bind(serde_json::to_string(&user.channels).expect("channels encode"))
        .bind(serde_json::to_string(&user.preferences).expect("preferences encode"))
        .bind(user.created_at_ms)
        .bind(user.updated_at_ms)
        .execute(&mut *transaction)
        .await;
        match inserted {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {
                return Err(CreateUserError::EmailTaken(user.email.clone()));
            }
            Err(error) => return Err(db_error("inserting a user")(error).into()),
        }
        let event = UserEvent::UserCreated(UserCreated {
            user_id: user.id,
            email: user.email.clone(),
            name: user.name.clone(),
            phone: user.phone.clone(),
            locale: user.locale.clone(),
            channels: user.channels,
            role: user.role,
            preferences: user.preferences.clone(),
        });
        enqueue(
            &mut transaction,
            self.dialect(),
            user.id,
            &event,
            user.created_at_ms,
        )
        .await?;
        transaction
            .commit()
            .await
            .map_err(db_error("committing a new user"))?;
        Ok(())
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, DbError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE email = $1"))
            .bind(email)
            .fetch_optional(self.pool())
            .await
            .map_err(db_error("looking up a user by email"))?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn user_by_id(&self, id: UserId) -> Result<Option<UserRecord>, DbError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db_error("looking up a user by id"))?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn count_admins(&self) -> Result<i64, DbError> {
        let row = sqlx::query("SELECT COUNT(*) AS admins FROM users WHERE role = 'admin'")
            .fetch_one(self.pool())
            .await
            .map_err(db_error("counting admins"))?;
        row.try_get::<i64, _>("admins")
            .map_err(db_error("reading the admin count"))
    }

    /// Writes the profile fields of `updated` and a `UserUpdated` event naming the fields that
    /// changed from `previous`; nothing is written when nothing changed. Optimistic: the row
    /// is written only if it is still `previous` (its `updated_at_ms` unchanged), and `false`
    /// says another update came first (read again and reapply). `updated.updated_at_ms` must
    /// be later than `previous.updated_at_ms`.
    pub async fn update_profile(
        &self,
        previous: &UserRecord,
        updated: &UserRecord,
    ) -> Result<bool, DbError> {
        let mut changed = Vec::new();
        if previous.name != updated.name {
            changed.push(UserField::Name);
        }
        if previous.phone != updated.phone {
            changed.push(UserField::Phone);
        }
        if previous.locale != updated.locale {
            changed.push(UserField::Locale);
        }
        if previous.channels != updated.channels {
            changed.push(UserField::Channels);
        }
        if previous.preferences != updated.preferences {
            changed.push(UserField::Preferences);
        }
        if changed.is_empty() {
            return Ok(true);
        }
        let mut transaction = self
            .pool()
            .begin()
            .await
            .map_err(db_error("starting a transaction"))?;
        let written = sqlx::query(
            "UPDATE users SET name = $1, phone = $2, locale = $3, channels = $4, \
             preferences = $5, updated_at_ms = $6 WHERE id = $7 AND updated_at_ms = $8",
        )
        .bind(&updated.name)
        .bind(updated.phone.clone())
        .bind(&updated.locale)
        .bind(serde_json::to_string(&updated.channels).expect("channels encode"))
        .bind(serde_json::to_string(&updated.preferences).expect("preferences encode"))
        .bind(updated.updated_at_ms)
        .bind(updated.id.to_string())
        .bind(previous.updated_at_ms)
        .execute(&mut *transaction)
        .await
        .map_err(db_error("updating a user"))?;
        if written.rows_affected() == 0 {
            return Ok(false);
        }
        let event = UserEvent::UserUpdated(UserUpdated {
            user_id: updated.id,
            email: updated.email.clone(),
            name: updated.name.clone(),
            phone: updated.phone.clone(),
            locale: updated.locale.clone(),
            channels: updated.channels,
            role: updated.role,
            preferences: updated.preferences.clone(),
            changed,
        });
        enqueue(
            &mut transaction,
            self.dialect(),
            updated.id,
            &event,
            updated.updated_at_ms,
        )
        .await?;
        transaction
            .commit()
            .await
            .map_err(db_error("committing a profile update"))?;
        Ok(true)
    }
}
