//! Authentication: password hashing, access tokens, refresh tokens and the bearer scheme.

pub mod access_token;

pub mod password;
pub mod refresh_token;
