//! Access tokens: JWTs signed with HMAC-SHA256.
//!
//! Verification is strict on purpose: the header must name exactly `HS256` (the allow-list;
//! `none` and every asymmetric algorithm are refused, which closes algorithm-confusion
//! attacks), the signature is compared in constant time, and `iss`, `aud`, `exp` and `nbf` are
//! all checked against the configuration and the clock.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The only algorithm accepted.
pub const ALGORITHM: &str = "HS256";

/// What a token asserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// `customer` or `admin`.
    pub role: String,
    pub iss: String,
    pub aud: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Not before, seconds since the epoch.
    pub nbf: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// The token's id: logout revokes it by this.
    pub jti: String,
    /// The refresh-token family (login session) the token was issued in.
    pub sid: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a JWT (three base64url parts)")]
    Malformed,
    #[error("the token's algorithm `{0}` is not allowed; only HS256 is")]
    AlgorithmNotAllowed(String),
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by `{0}`, not this service")]
    WrongIssuer(String),
    #[error("the token is for audience `{0}`, not this API")]
    WrongAudience(String),
}

/// Signs and verifies access tokens with one key.
#[derive(Clone)]
pub struct TokenSigner {
    key: Vec<u8>,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TokenSigner")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    pub fn new(key: Vec<u8>, issuer: &str, audience: &str) -> Self {
        Self {
            key,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let header = Header {
            alg: ALGORITHM.to_string(),
            typ: Some("JWT".to_string()),
        };
        let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("header encodes"));
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims encode"));
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }

    /// Checks everything but revocation (which needs the shared revocation list).
    pub fn verify(&self, token: &str, now_seconds: i64) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header_bytes = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| TokenError::Malformed)?;
        let header: Header =
            serde_json::from_slice(&header_bytes).map_err(|_| TokenError::Malformed)?;
        if header.alg != ALGORITHM {
            return Err(TokenError::AlgorithmNotAllowed(header.alg));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(header_bytes_input(token).as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if claims.iss != self.issuer {
            return Err(TokenError::WrongIssuer(claims.iss));
        }
        if claims.aud != self.audience {
            return Err(TokenError::WrongAudience(claims.aud));
        }
        if now_seconds >= claims.exp {
            return Err(TokenError::Expired);
        }
        if now_seconds < claims.nbf {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }
}

/// `header.payload`: the part of a JWT the signature covers.
fn header_bytes_input(token: &str) -> &str {
    match token.rfind('.') {
        Some(end) => &token[..end],
        None => token,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> TokenSigner {
        TokenSigner::new(b"0123456789abcdef0123456789abcdef".to_vec(), "iss", "aud")
    }

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "user".into(),
            role: "customer".into(),
            iss: "iss".into(),
            aud: "aud".into(),
            iat: 100,
            nbf: 100,
            exp,
            jti: "jti".into(),
            sid: "sid".into(),
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let token = signer().sign(&claims(200));
        assert_eq!(signer().verify(&token, 150), Ok(claims(200)));
        assert_eq!(signer().verify(&token, 200), Err(TokenError::Expired));
        assert_eq!(signer().verify(&token, 99), Err(TokenError::NotYetValid));
    }

    #[test]
    fn another_key_issuer_or_audience_is_refused() {
        let token = signer().sign(&claims(200));
        let other_key =
            TokenSigner::new(b"another key of enough length 1234".to_vec(), "iss", "aud");
        assert_eq!(other_key.verify(&token, 150), Err(TokenError::BadSignature));
        let other_issuer =
            TokenSigner::new(b"0123456789abcdef0123456789abcdef".to_vec(), "x", "aud");
        assert_eq!(
            other_issuer.verify(&token, 150),
            Err(TokenError::WrongIssuer("iss".into()))
        );
        let other_audience =
            TokenSigner::new(b"0123456789abcdef0123456789abcdef".to_vec(), "iss", "x");
        assert_eq!(
            other_audience.verify(&token, 150),
            Err(TokenError::WrongAudience("aud".into()))
        );
    }

    #[test]
    fn alg_none_and_tampered_payloads_are_refused() {
        let token = signer().sign(&claims(200));
        let parts: Vec<&str> = token.split('.').collect();
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let forged = format!("{none_header}.{}.", parts[1]);
        assert_eq!(
            signer().verify(&forged, 150),
            Err(TokenError::AlgorithmNotAllowed("none".into()))
        );
        let mut admin = claims(200);
        admin.role = "admin".into();
        let admin_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&admin).unwrap());
        let tampered = format!("{}.{admin_payload}.{}", parts[0], parts[2]);
        assert_eq!(
            signer().verify(&tampered, 150),
            Err(TokenError::BadSignature)
        );
        assert_eq!(signer().verify("abc", 150), Err(TokenError::Malformed));
    }
}
