//! The single-use bearer token that chains a pump's requests.

use core::fmt;

/// Length of every token the server issues: 32 random bytes in unpadded
/// base64url, i.e. 256 bits from the OS CSPRNG.
pub const TOKEN_LEN: usize = 43;

/// A single-use, time-limited bearer credential.
///
/// The server issues one with every successful login, index or report answer;
/// the pump presents it once, in `Authorization: Bearer`, and replaces it with
/// the one in the answer. The pump keeps it in RAM only. Parsing checks the
/// shape (length and base64url alphabet), so garbage is refused before any
/// database lookup.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(heapless::String<TOKEN_LEN>);

/// Why a string is not a token this server could have issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenParseError;

impl fmt::Display for TokenParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a token is 43 base64url characters")
    }
}

impl Token {
    /// Accepts exactly [`TOKEN_LEN`] characters of the base64url alphabet.
    pub fn parse(s: &str) -> Result<Self, TokenParseError> {
        if s.len() != TOKEN_LEN
            || !s
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        {
            return Err(TokenParseError);
        }
        let mut out = heapless::String::new();
        out.push_str(s).map_err(|_| TokenParseError)?;
        Ok(Token(out))
    }

    /// The token's text, to put after `Bearer ` or to hash.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// Never prints the secret itself: tokens must not end up in logs.
impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

impl serde::Serialize for Token {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Token {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Token;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a 43-character base64url token")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Token, E> {
                Token::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Token {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[A-Za-z0-9_-]{43}$"))
            .description(Some(
                "Single-use bearer token: present it once, then use the one in the answer.",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Token {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_issued_shape_only() {
        let good = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z";
        assert_eq!(good.len(), TOKEN_LEN);
        assert_eq!(Token::parse(good).unwrap().as_str(), good);
        assert!(Token::parse(&good[1..]).is_err());
        assert!(Token::parse("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_=").is_err());
        assert!(Token::parse("").is_err());
    }

    #[test]
    fn debug_hides_the_secret() {
        let t = Token::parse("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z").unwrap();
        assert_eq!(std::format!("{t:?}"), "Token(..)");
    }
}
