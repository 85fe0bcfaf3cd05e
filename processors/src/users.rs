//! The user table: every user's profile and notification settings, from user-events (which
//! carry full snapshots, so the latest record per user is the whole profile).

use orderflow_schemas::envelope::Envelope;
use orderflow_schemas::messages::user_events::{UserCreated, UserEvent, UserUpdated};

/// Global table of users: user id -> profile.
pub const USERS_TABLE: &str = "users";

/// A user's profile, as the table keeps it.
pub type UserProfile = UserCreated;

/// The `users` global table's projection of a user event.
pub fn project_user(
    _key: String,
    event: Envelope<UserEvent>,
) -> Option<(String, Option<UserProfile>)> {
    let profile = match event.payload {
        UserEvent::UserCreated(created) => created,
        UserEvent::UserUpdated(UserUpdated {
            user_id,
            email,
            name,
            phone,
            locale,
            channels,
            role,
            preferences,
            ..
        }) => UserCreated {
            user_id,
            email,
            name,
            phone,
            locale,
            channels,
            role,
            preferences,
        },
    };
    Some((profile.user_id.to_string(), Some(profile)))
}
