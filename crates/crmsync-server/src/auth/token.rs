//! Bearer tokens: `base64url(claims JSON) . base64url(HMAC-SHA256(claims))`, signed with a
//! key derived from the master key. Stateless, so any instance sharing the key accepts them.
//!
//! `kind` says whether `sub` is a user id or an application's client id; tokens without it
//! (issued before applications existed) are user tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use super::PrincipalKind;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// Organization the token is valid for.
    pub org: String,
    /// User id, or client id of an application.
    pub sub: Uuid,
    /// What `sub` identifies.
    #[serde(default)]
    pub kind: PrincipalKind,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
}

pub struct TokenSigner {
    key: [u8; 32],
}

impl TokenSigner {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(payload);
        mac
    }

    pub fn issue(&self, claims: &Claims) -> String {
        let payload = serde_json::to_vec(claims).expect("claims serialize");
        let signature = self.mac(&payload).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    /// The claims of a well-signed, unexpired token.
    pub fn verify(&self, token: &str, now: i64) -> Option<Claims> {
        let (payload, signature) = token.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        self.mac(&payload).verify_slice(&signature).ok()?;
        let claims: Claims = serde_json::from_slice(&payload).ok()?;
        (claims.exp > now).then_some(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_with_the_key_and_before_expiry() {
        let signer = TokenSigner::new([7; 32]);
        let claims = Claims {
            org: "acme".into(),
            sub: Uuid::new_v4(),
            kind: PrincipalKind::App,
            exp: 1000,
        };
        let token = signer.issue(&claims);
        assert_eq!(signer.verify(&token, 999), Some(claims.clone()));
        assert_eq!(signer.verify(&token, 1000), None, "expired");
        assert_eq!(TokenSigner::new([8; 32]).verify(&token, 0), None, "other key");
        let (payload, sig) = token.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD
            .encode(br#"{"org":"beta","sub":"00000000-0000-0000-0000-000000000000","exp":99999}"#);
        assert_eq!(
            signer.verify(&format!("{forged}.{sig}"), 0),
            None,
            "forged claims"
        );
        assert_eq!(signer.verify(payload, 0), None);
        assert_eq!(signer.verify("garbage", 0), None);
    }

    #[test]
    fn the_kind_is_signed_and_tokens_without_it_are_user_tokens() {
        let signer = TokenSigner::new([7; 32]);
        let app = Claims {
            org: "acme".into(),
            sub: Uuid::new_v4(),
            kind: PrincipalKind::App,
            exp: 1000,
        };
        let token = signer.issue(&app);
        let (payload, sig) = token.split_once('.').unwrap();
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert!(text.contains(r#""kind":"app""#), "{text}");
        let as_user = URL_SAFE_NO_PAD.encode(text.replace(r#""kind":"app""#, r#""kind":"user""#));
        assert_eq!(signer.verify(&format!("{as_user}.{sig}"), 0), None);
        let legacy = Claims {
            kind: PrincipalKind::User,
            ..app
        };
        let without_kind = format!(r#"{{"org":"acme","sub":"{}","exp":1000}}"#, legacy.sub);
        let signature = signer.mac(without_kind.as_bytes()).finalize().into_bytes();
        let token = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&without_kind),
            URL_SAFE_NO_PAD.encode(signature)
        );
        assert_eq!(signer.verify(&token, 0), Some(legacy));
    }
}
