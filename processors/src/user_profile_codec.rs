//! How the `users` global table keeps a [`UserProfile`], across the shapes it has had.
//!
//! [`CompactCodec`] is positional (postcard): a field added to a stored type makes its old
//! values unreadable as the new shape. So each shape has its own format byte:
//! - `0x02` (this build): postcard of [`UserProfile`], which added `preferences`;
//! - `0x01`: [`CompactCodec`]'s postcard of the shape before it ([`UserProfileV1`]);
//! - anything else: JSON, which reads either shape (`preferences` defaults to nothing muted).

use orderflow_schemas::ids::UserId;
use orderflow_schemas::messages::user_events::{NotificationChannels, UserRole};
use orderflow_state_stores::codec::{decode_compact, encode_compact};
use orderflow_state_stores::{Codec, CompactCodec};
use serde::{Deserialize, Serialize};

use crate::users::UserProfile;

/// The first byte of a [`UserProfile`] in its second shape.
pub const USER_PROFILE_FORMAT_V2: u8 = 0x02;

/// The `users` table's value codec (module doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct UserProfileCodec;

impl Codec<UserProfile> for UserProfileCodec {
    fn encode(&self, value: &UserProfile, out: &mut Vec<u8>) -> Result<(), String> {
        encode_compact(USER_PROFILE_FORMAT_V2, value, out)
    }

    fn decode(&self, bytes: &[u8]) -> Result<UserProfile, String> {
        match bytes.split_first() {
            Some((&USER_PROFILE_FORMAT_V2, rest)) => decode_compact(rest, "user profile v2"),
            Some((&orderflow_state_stores::codec::COMPACT_FORMAT_V1, _)) => CompactCodec
                .decode(bytes)
                .map(|old: UserProfileV1| old.into()),
            _ => CompactCodec.decode(bytes),
        }
    }
}

/// A profile as stored before notification preferences: the same fields, without
/// `preferences`. Read only; never written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct UserProfileV1 {
    user_id: UserId,
    email: String,
    name: String,
    phone: Option<String>,
    locale: String,
    channels: NotificationChannels,
    role: UserRole,
}

impl From<UserProfileV1> for UserProfile {
    fn from(old: UserProfileV1) -> Self {
        Self {
            user_id: old.user_id,
            email: old.email,
            name: old.name,
            phone: old.phone,
            locale: old.locale,
            channels: old.channels,
            role: old.role,
            preferences: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use orderflow_schemas::messages::user_events::{NotificationPreferences, NotificationTopic};

    use super::*;

    fn old_profile() -> UserProfileV1 {
        UserProfileV1 {
            user_id: UserId::generate(1_700_000_000_000),
            email: "ada@example.com".to_string(),
            name: "Ada".to_string(),
            phone: None,
            locale: "en-GB".to_string(),
            channels: NotificationChannels {
                email: true,
                sms: false,
                push: true,
            },
            role: UserRole::Customer,
        }
    }

    #[test]
    fn profiles_stored_before_preferences_still_read_with_nothing_muted() {
        let old = old_profile();
        let stored = CompactCodec.encode_to_vec(&old).unwrap();
        let read = UserProfileCodec.decode(&stored).unwrap();
        assert_eq!(read, UserProfile::from(old.clone()));
        assert!(read.preferences.muted.is_empty());
        // The JSON the first builds wrote, too.
        let json = serde_json::to_vec(&old).unwrap();
        assert_eq!(UserProfileCodec.decode(&json).unwrap(), read);
    }

    #[test]
    fn profiles_round_trip_with_their_preferences() {
        let mut profile = UserProfile::from(old_profile());
        profile.preferences = NotificationPreferences {
            muted: [NotificationTopic::OrderShipped].into(),
        };
        let stored = UserProfileCodec.encode_to_vec(&profile).unwrap();
        assert_eq!(stored[0], USER_PROFILE_FORMAT_V2);
        assert_eq!(UserProfileCodec.decode(&stored).unwrap(), profile);
    }
}
