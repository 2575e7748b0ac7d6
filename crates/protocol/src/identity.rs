//! Who is talking: the device's proof of its key at login, and the server's
//! signature on every infusion index.
//!
//! A MAC address is set by firmware at will, so the paper's login (username,
//! password, MAC) is all a cloned client needs. Here each device holds an
//! Ed25519 secret issued at registration; the server keeps only its public
//! half, which cannot log in by itself. At login the device signs a fresh
//! server nonce, so a captured login cannot be replayed.
//!
//! In the other direction the server signs every index with its own Ed25519
//! key, whose public half is provisioned into the pump with the device
//! secret. The signature covers the patient, the device's MAC, the version
//! and every value, so a compromised network path can neither change a dose
//! nor move one device's index to another.
//!
//! Both messages are fixed-layout bytes built on the stack, with a domain
//! label each, so that one kind of signature can never pass for the other.

use core::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use crate::limits::USERNAME_MAX;
use crate::{Index, InfusionState, MacAddress, PatientId};

/// Domain label of the login proof.
const LOGIN_LABEL: &[u8] = b"infusion/device-login/v1";
/// Domain label of the index signature.
const INDEX_LABEL: &[u8] = b"infusion/index/v1";

/// Fixed-size bytes written in JSON as lower-case hex (upper case is read
/// too). Used for nonces, keys and signatures.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HexBytes<const N: usize>(pub [u8; N]);

/// A login challenge: 32 bytes the server issued (its time, randomness and
/// its own tag), signed back by the device.
pub type Nonce = HexBytes<32>;
/// An Ed25519 signature.
pub type Signature = HexBytes<64>;
/// An Ed25519 public key: the device's (kept by the server) or the
/// server's index key (kept by the pump).
pub type PublicKey = HexBytes<32>;

/// Why a string is not the hex form of `N` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HexParseError {
    /// Bytes expected.
    pub expected: usize,
}

impl fmt::Display for HexParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {} hex digits", self.expected * 2)
    }
}

impl<const N: usize> HexBytes<N> {
    /// Reads exactly `2 N` hex digits.
    pub fn parse(s: &str) -> Result<Self, HexParseError> {
        let err = HexParseError { expected: N };
        let s = s.as_bytes();
        if s.len() != 2 * N {
            return Err(err);
        }
        let mut out = [0u8; N];
        for (byte, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
            let hi = hex_value(pair[0]).ok_or(err)?;
            let lo = hex_value(pair[1]).ok_or(err)?;
            *byte = hi << 4 | lo;
        }
        Ok(HexBytes(out))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl<const N: usize> fmt::Display for HexBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl<const N: usize> fmt::Debug for HexBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HexBytes<{N}>({self})")
    }
}

impl<const N: usize> core::str::FromStr for HexBytes<N> {
    type Err = HexParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<const N: usize> serde::Serialize for HexBytes<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The longest value on the wire is a 64-byte signature.
        let mut buf = [0u8; 128];
        let out = buf
            .get_mut(..2 * N)
            .ok_or_else(|| serde::ser::Error::custom("hex value too long"))?;
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for (pair, b) in out.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0xf)];
        }
        // Only ASCII digits were written.
        let text = core::str::from_utf8(out).map_err(serde::ser::Error::custom)?;
        s.serialize_str(text)
    }
}

impl<'de, const N: usize> serde::Deserialize<'de> for HexBytes<N> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<const N: usize>;
        impl<const N: usize> serde::de::Visitor<'_> for Visitor<N> {
            type Value = HexBytes<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} hex digits", 2 * N)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HexBytes<N>, E> {
                HexBytes::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor::<N>)
    }
}

#[cfg(feature = "openapi")]
impl<const N: usize> utoipa::PartialSchema for HexBytes<N> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let pattern = match N {
            32 => "^[0-9a-fA-F]{64}$",
            64 => "^[0-9a-fA-F]{128}$",
            _ => "^([0-9a-fA-F]{2})+$",
        };
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(pattern))
            .description(Some(match N {
                32 => "32 bytes in hex: a login nonce or an Ed25519 public key.",
                _ => "64 bytes in hex: an Ed25519 signature.",
            }))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl<const N: usize> utoipa::ToSchema for HexBytes<N> {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Owned(std::format!("Hex{N}"))
    }
}

/// A device's secret: the Ed25519 seed issued at registration, shown once
/// and then held only by the pump.
#[derive(Clone)]
pub struct DeviceSecret(SigningKey);

impl DeviceSecret {
    /// The secret from its 32 seed bytes.
    pub fn from_bytes(seed: &[u8; 32]) -> Self {
        DeviceSecret(SigningKey::from_bytes(seed))
    }

    /// The secret from the 64 hex digits `infusion admin bind-device`
    /// printed.
    pub fn parse(s: &str) -> Result<Self, HexParseError> {
        HexBytes::<32>::parse(s).map(|b| Self::from_bytes(&b.0))
    }

    /// The seed, to show once at registration.
    pub fn to_hex(&self) -> HexBytes<32> {
        HexBytes(self.0.to_bytes())
    }

    /// The half the server keeps.
    pub fn public_key(&self) -> PublicKey {
        HexBytes(self.0.verifying_key().to_bytes())
    }

    /// The proof of possession for one login: a signature over the
    /// server's nonce, the username and the MAC.
    pub fn prove(&self, nonce: &Nonce, username: &str, mac: MacAddress) -> Signature {
        let msg = login_message(nonce, username, mac);
        HexBytes(self.0.sign(&msg).to_bytes())
    }
}

/// Never prints the secret.
impl fmt::Debug for DeviceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceSecret(public {})", self.public_key())
    }
}

/// True when `proof` is `device`'s signature of this login.
pub fn verify_login_proof(
    device: &PublicKey,
    nonce: &Nonce,
    username: &str,
    mac: MacAddress,
    proof: &Signature,
) -> bool {
    verify(device, &login_message(nonce, username, mac), proof)
}

/// The server's index key: signs every index it sends.
#[derive(Clone)]
pub struct IndexSigner(SigningKey);

impl IndexSigner {
    /// The key from its 32 seed bytes.
    pub fn from_bytes(seed: &[u8; 32]) -> Self {
        IndexSigner(SigningKey::from_bytes(seed))
    }

    /// The public half, to provision into pumps.
    pub fn public_key(&self) -> PublicKey {
        HexBytes(self.0.verifying_key().to_bytes())
    }

    /// Signs `index` for this patient and this device.
    pub fn sign(&self, patient: PatientId, mac: MacAddress, index: &Index) -> Signature {
        HexBytes(self.0.sign(&index_message(patient, mac, index)).to_bytes())
    }
}

/// Never prints the key.
impl fmt::Debug for IndexSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IndexSigner(public {})", self.public_key())
    }
}

/// True when `signature` is the server key's signature of `index` for this
/// patient and this device.
pub fn verify_index(
    server: &PublicKey,
    patient: PatientId,
    mac: MacAddress,
    index: &Index,
    signature: &Signature,
) -> bool {
    verify(server, &index_message(patient, mac, index), signature)
}

/// Strict verification: refuses non-canonical encodings and small-order
/// keys, so no second valid signature can be made from a captured one.
fn verify(key: &PublicKey, msg: &[u8], signature: &Signature) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(&key.0) else {
        return false;
    };
    let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
    key.verify_strict(msg, &signature).is_ok()
}

/// Label, nonce, MAC, username length, username.
fn login_message(
    nonce: &Nonce,
    username: &str,
    mac: MacAddress,
) -> heapless::Vec<u8, { 24 + 32 + 6 + 1 + USERNAME_MAX }> {
    let mut msg = heapless::Vec::new();
    // Cannot overflow: the capacity is the sum of the parts' maxima, and
    // a longer username is cut (the server never accepts one).
    let name = &username.as_bytes()[..username.len().min(USERNAME_MAX)];
    let _ = msg.extend_from_slice(LOGIN_LABEL);
    let _ = msg.extend_from_slice(&nonce.0);
    let _ = msg.extend_from_slice(&mac.0);
    let _ = msg.push(name.len() as u8);
    let _ = msg.extend_from_slice(name);
    msg
}

/// Label, patient, MAC, version, volume, rate, state, limits: every field
/// of the index, big-endian.
fn index_message(patient: PatientId, mac: MacAddress, index: &Index) -> [u8; 17 + 8 + 6 + 25] {
    let mut msg = [0u8; 17 + 8 + 6 + 25];
    let state = match index.state {
        InfusionState::Run => 1u8,
        InfusionState::Hold => 0u8,
    };
    let parts: [&[u8]; 10] = [
        INDEX_LABEL,
        &patient.0.to_be_bytes(),
        &mac.0,
        &index.version.to_be_bytes(),
        &index.volume_ul.to_be_bytes(),
        &index.rate_ul_h.to_be_bytes(),
        &[state],
        &index.limits.min_rate_ul_h.to_be_bytes(),
        &index.limits.max_rate_ul_h.to_be_bytes(),
        &index.limits.max_volume_ul.to_be_bytes(),
    ];
    let mut at = 0;
    for part in parts {
        msg[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PatientLimits;

    fn index(version: u32) -> Index {
        Index {
            version,
            volume_ul: 2_000,
            rate_ul_h: 4_000,
            state: InfusionState::Run,
            limits: PatientLimits {
                min_rate_ul_h: 100,
                max_rate_ul_h: 10_000,
                max_volume_ul: 5_000,
            },
        }
    }

    const MAC: MacAddress = MacAddress([2, 0, 0, 0, 0, 1]);

    #[test]
    fn hex_round_trips_and_refuses_other_shapes() {
        let n = HexBytes([0xab; 32]);
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(json, std::format!("\"{}\"", "ab".repeat(32)));
        assert_eq!(serde_json::from_str::<Nonce>(&json).unwrap(), n);
        assert_eq!(
            Nonce::parse(&"AB".repeat(32)).unwrap(),
            n,
            "upper case reads too"
        );
        for bad in ["", "ab", &"ab".repeat(33), &"zz".repeat(32)] {
            assert!(Nonce::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_login_proof_binds_nonce_username_and_mac() {
        let secret = DeviceSecret::from_bytes(&[7; 32]);
        let public = secret.public_key();
        let nonce = HexBytes([1; 32]);
        let proof = secret.prove(&nonce, "alice", MAC);
        assert!(verify_login_proof(&public, &nonce, "alice", MAC, &proof));
        assert!(!verify_login_proof(
            &public,
            &HexBytes([2; 32]),
            "alice",
            MAC,
            &proof
        ));
        assert!(!verify_login_proof(&public, &nonce, "alicf", MAC, &proof));
        assert!(!verify_login_proof(
            &public,
            &nonce,
            "alice",
            MacAddress([2, 0, 0, 0, 0, 2]),
            &proof
        ));
        let other = DeviceSecret::from_bytes(&[8; 32]).public_key();
        assert!(!verify_login_proof(&other, &nonce, "alice", MAC, &proof));
    }

    #[test]
    fn an_index_signature_binds_patient_device_and_values() {
        let signer = IndexSigner::from_bytes(&[9; 32]);
        let key = signer.public_key();
        let sig = signer.sign(PatientId(3), MAC, &index(4));
        assert!(verify_index(&key, PatientId(3), MAC, &index(4), &sig));
        assert!(!verify_index(&key, PatientId(4), MAC, &index(4), &sig));
        assert!(!verify_index(
            &key,
            PatientId(3),
            MacAddress([2, 0, 0, 0, 0, 2]),
            &index(4),
            &sig
        ));
        assert!(!verify_index(&key, PatientId(3), MAC, &index(5), &sig));
        let mut held = index(4);
        held.state = InfusionState::Hold;
        assert!(!verify_index(&key, PatientId(3), MAC, &held, &sig));
    }

    #[test]
    fn secrets_never_print() {
        let secret = DeviceSecret::from_bytes(&[7; 32]);
        let seed = std::format!("{}", secret.to_hex());
        assert!(!std::format!("{secret:?}").contains(&seed));
    }
}
