//! First-start chores: the token signing key and the first administrator.

use std::path::Path;

use orderflow_schemas::messages::user_events::UserRole;

use crate::api::auth::create_user;
use crate::error::IngressError;
use crate::state::AppState;

/// The key from the configuration, or the one kept in `data_dir/jwt.key` (created on first
/// start with 256 random bits, readable by the owner only).
pub fn signing_key(configured: &str, data_dir: &Path) -> Result<Vec<u8>, IngressError> {
    if !configured.is_empty() {
        return Ok(configured.as_bytes().to_vec());
    }
    let path = data_dir.join("jwt.key");
    let io_error = |what: &str| {
        let what = format!("{what} {}", path.display());
        move |source| IngressError::Io { what, source }
    };
    if let Ok(existing) = std::fs::read_to_string(&path) {
        return Ok(existing.trim().as_bytes().to_vec());
    }
    std::fs::create_dir_all(data_dir).map_err(io_error("creating the directory of"))?;
    let key = crate::auth::refresh_token::generate();
    write_private(&path, &key).map_err(io_error("writing"))?;
    Ok(key.into_bytes())
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

/// How the first administrator came to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminBootstrap {
    /// An administrator already exists.
    Existing,
    /// Created from `ORDERFLOW_ADMIN_EMAIL` and `ORDERFLOW_ADMIN_PASSWORD`.
    FromEnvironment { email: String },
    /// Created with a generated password, shown this once.
    Generated { email: String, password: String },
}

/// Creates the first administrator if there is none.
pub async fn ensure_admin(
    state: &AppState,
    email: Option<String>,
    password: Option<String>,
) -> Result<AdminBootstrap, String> {
    let admins = state
        .database
        .count_admins()
        .await
        .map_err(|error| error.to_string())?;
    if admins > 0 {
        return Ok(AdminBootstrap::Existing);
    }
    let (email, password, generated) = match (email, password) {
        (Some(email), Some(password)) => (email, password, false),
        (Some(_), None) | (None, Some(_)) => {
            return Err(
                "set both ORDERFLOW_ADMIN_EMAIL and ORDERFLOW_ADMIN_PASSWORD, or neither"
                    .to_string(),
            );
        }
        (None, None) => (
            "admin@orderflow.local".to_string(),
            crate::auth::refresh_token::generate()[..24].to_string(),
            true,
        ),
    };
    let email = email.trim().to_lowercase();
    crate::api::auth::check_password(&password)
        .map_err(|error| format!("admin password: {error:?}"))?;
    create_user(
        state,
        &email,
        &password,
        "Administrator",
        None,
        "en-US",
        UserRole::Admin,
    )
    .await
    .map_err(|error| format!("creating the first admin: {error:?}"))?;
    state.outbox_signal.notify_one();
    Ok(if generated {
        AdminBootstrap::Generated { email, password }
    } else {
        AdminBootstrap::FromEnvironment { email }
    })
}
