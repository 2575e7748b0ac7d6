//! Issuing and hashing the single-use tokens.

use base64::Engine;
use infusion_protocol::Token;
use infusion_store::TokenHash;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Draws a new token: 32 bytes (256 bits) from the operating system's
/// CSPRNG, in base64url. Returns the token for the client and the hash for
/// the database.
pub fn issue() -> Result<(Token, TokenHash), ApiError> {
    let bytes = crate::identity::random()?;
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let token = Token::parse(&text)
        .map_err(|_| ApiError::internal("issued token has an unexpected shape"))?;
    let hash = hash(&token);
    Ok((token, hash))
}

/// SHA-256 of the token text: what the database stores and looks up. A fast
/// hash is right here because the token is 256 random bits, not a password.
pub fn hash(token: &Token) -> TokenHash {
    TokenHash(Sha256::digest(token.as_str().as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_and_hash_stably() {
        let (a, ha) = issue().unwrap();
        let (b, hb) = issue().unwrap();
        assert_ne!(a, b);
        assert_ne!(ha, hb);
        assert_eq!(hash(&a), ha);
    }
}
