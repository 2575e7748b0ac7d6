//! Provisioning over the serial console, at the first boot (or when the
//! board asks for it): the Wi-Fi, the server, the patient account, and
//! the device secret and server key `infusion admin bind-device` printed.
//! Nothing of it is compiled into the image.
//!
//! The console takes one `name=value` per line, then `save`:
//!
//! ```text
//! wifi-ssid=Ward 4
//! wifi-password=...
//! server=https://pumps.hospital.example:8443
//! server-ca=<the authority's certificate, DER in base64 on one line>
//! username=alice
//! password=...
//! device-secret=<64 hex digits>
//! server-key=<64 hex digits>
//! poll-interval-ms=5000          (optional)
//! save
//! ```
//!
//! The authority may also be pasted as PEM, its `-----BEGIN CERTIFICATE-----`
//! line to its `-----END CERTIFICATE-----` line. Each line is answered
//! `ok` or `refused: <why>`; `save` checks that everything is there (an
//! `https://` server with its authority) before anything is written.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use embedded_io_async::{Read, Write};
use infusion_protocol::{DeviceSecret, PublicKey};
use infusion_pump_persist::{CA_MAX, Setup};

use crate::status::say;

/// What provisioning gives the pump.
pub struct Provisioned {
    /// Wi-Fi, server and account.
    pub setup: Setup,
    /// The device secret's 32 bytes.
    pub device_secret: [u8; 32],
    /// The server's index key.
    pub server_key: [u8; 32],
}

/// The shortest and longest poll interval a pump may be given, ms.
pub const POLL_RANGE_MS: core::ops::RangeInclusive<u32> = 1_000..=60_000;

/// Reads settings from `console` until `save` finds them complete;
/// `None` if the console closed first.
pub async fn provision<C: Read + Write>(console: &mut C, mac: &str) -> Option<Provisioned> {
    let mut setup = Setup::default();
    let mut secret: Option<[u8; 32]> = None;
    let mut key: Option<[u8; 32]> = None;
    say(console, "infusion pump: not provisioned").await;
    let mut hello: heapless::String<80> = heapless::String::new();
    let _ = hello.push_str("mac=");
    let _ = hello.push_str(mac);
    say(console, &hello).await;
    say(
        console,
        "type name=value lines (wifi-ssid, wifi-password, server, server-ca, username, password, device-secret, server-key, poll-interval-ms), then save",
    )
    .await;
    // A PEM block being pasted: its base64 so far.
    let mut pem: Option<heapless::String<PEM_MAX>> = None;
    loop {
        let mut line = [0u8; LINE_MAX];
        let n = read_line(console, &mut line).await?;
        let Ok(text) = core::str::from_utf8(&line[..n]) else {
            say(console, "refused: not UTF-8").await;
            continue;
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        if let Some(block) = pem.as_mut() {
            if text == PEM_END {
                let answer = set_ca(&mut setup, block);
                pem = None;
                say(console, answer.err().unwrap_or("ok")).await;
            } else if block.push_str(text).is_err() {
                pem = None;
                say(console, "refused: the certificate is too long").await;
            }
            continue;
        }
        if text == PEM_BEGIN {
            pem = Some(heapless::String::new());
            continue;
        }
        if text == "save" {
            match (secret, key, missing(&setup)) {
                (Some(device_secret), Some(server_key), None) => {
                    return Some(Provisioned {
                        setup,
                        device_secret,
                        server_key,
                    });
                }
                (None, _, _) => say(console, "refused: device-secret is missing").await,
                (_, None, _) => say(console, "refused: server-key is missing").await,
                (_, _, Some(name)) => {
                    let mut why: heapless::String<64> = heapless::String::new();
                    let _ = why.push_str("refused: ");
                    let _ = why.push_str(name);
                    let _ = why.push_str(" is missing");
                    say(console, &why).await;
                }
            }
            continue;
        }
        let answer = set(&mut setup, &mut secret, &mut key, text);
        say(console, answer.err().unwrap_or("ok")).await;
    }
}

/// Bytes of the longest line: a certificate authority in base64.
const LINE_MAX: usize = 1_600;
/// Base64 characters of the largest authority.
const PEM_MAX: usize = CA_MAX.div_ceil(3) * 4;
const PEM_BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const PEM_END: &str = "-----END CERTIFICATE-----";

/// The first required setting not given yet.
fn missing(s: &Setup) -> Option<&'static str> {
    let https = s.server.starts_with("https://");
    [
        (s.wifi_ssid.is_empty(), "wifi-ssid"),
        (s.server.is_empty(), "server"),
        (
            https && s.server_ca.is_empty(),
            "server-ca (an https:// server needs it)",
        ),
        (s.username.is_empty(), "username"),
        (s.password.is_empty(), "password"),
    ]
    .into_iter()
    .find_map(|(gone, name)| gone.then_some(name))
}

/// Takes one `name=value`; a refusal leaves everything unchanged.
fn set(
    setup: &mut Setup,
    secret: &mut Option<[u8; 32]>,
    key: &mut Option<[u8; 32]>,
    line: &str,
) -> Result<(), &'static str> {
    let Some((name, value)) = line.split_once('=') else {
        return Err("refused: expected name=value");
    };
    match name.trim() {
        "wifi-ssid" => setup.wifi_ssid = fit(value)?,
        "wifi-password" => setup.wifi_password = fit(value)?,
        "server" if !value.starts_with("http://") && !value.starts_with("https://") => {
            return Err("refused: the server is an http:// or https:// URL");
        }
        "server" => setup.server = fit(value)?,
        "server-ca" => set_ca(setup, value)?,
        "username" => setup.username = fit(value)?,
        "password" => setup.password = fit(value)?,
        "device-secret" => {
            let s = DeviceSecret::parse(value)
                .map_err(|_| "refused: the device secret is 64 hex digits")?;
            *secret = Some(s.to_hex().0);
        }
        "server-key" => {
            let k =
                PublicKey::parse(value).map_err(|_| "refused: the server key is 64 hex digits")?;
            *key = Some(k.0);
        }
        "poll-interval-ms" => match value.parse::<u32>() {
            Ok(ms) if POLL_RANGE_MS.contains(&ms) => setup.poll_interval_ms = ms,
            _ => return Err("refused: poll-interval-ms is 1000 to 60000"),
        },
        _ => return Err("refused: unknown setting"),
    }
    Ok(())
}

/// The authority from its base64 DER; a refusal leaves the old one.
fn set_ca(setup: &mut Setup, base64: &str) -> Result<(), &'static str> {
    let mut der = [0u8; CA_MAX];
    let n = BASE64
        .decode_slice(base64, &mut der)
        .map_err(|_| "refused: the certificate is not base64 of at most 1024 bytes")?;
    // A certificate is a DER SEQUENCE; anything else is not one.
    if n < 64 || der[0] != 0x30 {
        return Err("refused: that is not a certificate");
    }
    setup.server_ca = heapless::Vec::from_slice(&der[..n]).map_err(|_| "refused: too long")?;
    Ok(())
}

/// `value` in a field of `N` bytes.
fn fit<const N: usize>(value: &str) -> Result<heapless::String<N>, &'static str> {
    heapless::String::try_from(value).map_err(|_| "refused: too long")
}

/// Reads one line (ended by CR or LF) into `buf`; `None` if the console
/// closed. A byte lost to a line error is skipped; longer lines are cut
/// at the buffer's end.
async fn read_line<C: Read>(console: &mut C, buf: &mut [u8]) -> Option<usize> {
    let mut n = 0;
    loop {
        let mut byte = [0u8; 1];
        match console.read(&mut byte).await {
            Ok(0) => return None,
            Ok(_) => {}
            Err(_) => continue,
        }
        match byte[0] {
            b'\r' | b'\n' if n > 0 => return Some(n),
            b'\r' | b'\n' => {}
            // Backspace and delete, as a terminal sends them.
            8 | 127 => n = n.saturating_sub(1),
            b if n < buf.len() => {
                buf[n] = b;
                n += 1;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::string::String;
    use std::string::ToString;
    use std::vec::Vec;

    use infusion_protocol::HexBytes;

    use super::*;

    /// A console that types `input` and keeps what the pump wrote.
    struct Script {
        input: Vec<u8>,
        at: usize,
        output: Vec<u8>,
    }

    impl embedded_io_async::ErrorType for Script {
        type Error = core::convert::Infallible;
    }

    impl Read for Script {
        async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
            let n = buf.len().min(self.input.len() - self.at);
            buf[..n].copy_from_slice(&self.input[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    impl Write for Script {
        async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }
        async fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    const SECRET: &str = "a16085f3cc0b4a911339b597b290f46aea8f5aba4e79feff74d5443965fc6dc2";
    const KEY: &str = "514781276682c3dfacf228492e888fb0c000d4080db59b98cac68a618c8c6dbb";

    /// The tests' certificate authority (P-256).
    const CA_PEM: &str = include_str!("../../../crates/testkit/certs/ca.pem");

    #[test]
    fn a_pump_is_provisioned_line_by_line_and_refusals_change_nothing() {
        let typed = std::format!(
            "save\r\nwifi-ssid=Ward 4\r\nserver=ftp://x\r\nserver=https://localhost:8443\r\n\
             username=alice\r\npassword=pw\r\ndevice-secret=12\r\ndevice-secret={SECRET}\r\n\
             save\r\nserver-key={KEY}\r\nsave\r\nserver-ca=AAAA\r\n{CA_PEM}\
             poll-interval-ms=10\r\npoll-interval-ms=2000\r\n\
             colour=blue\r\nwifi-password=wxyz\x7fz\r\nsave\r\n"
        );
        let mut console = Script {
            input: typed.into_bytes(),
            at: 0,
            output: Vec::new(),
        };
        let p = embassy_futures::block_on(provision(&mut console, "02:00:00:00:00:01")).unwrap();
        let said = String::from_utf8(console.output).unwrap();
        let answers: Vec<&str> = said.lines().skip(3).collect();
        assert_eq!(
            answers,
            [
                "refused: device-secret is missing",
                "ok",
                "refused: the server is an http:// or https:// URL",
                "ok",
                "ok",
                "ok",
                "refused: the device secret is 64 hex digits",
                "ok",
                "refused: server-key is missing",
                "ok",
                "refused: server-ca (an https:// server needs it) is missing",
                "refused: that is not a certificate",
                "ok",
                "refused: poll-interval-ms is 1000 to 60000",
                "ok",
                "refused: unknown setting",
                "ok",
            ]
        );
        assert_eq!(p.setup.wifi_ssid.as_str(), "Ward 4");
        assert_eq!(
            p.setup.wifi_password.as_str(),
            "wxyz",
            "a backspace takes a character back"
        );
        assert_eq!(p.setup.server.as_str(), "https://localhost:8443");
        assert_eq!(p.setup.poll_interval_ms, 2_000);
        let body: String = CA_PEM.lines().filter(|l| !l.starts_with("-----")).collect();
        let mut der = [0u8; CA_MAX];
        let n = BASE64.decode_slice(body.as_str(), &mut der).unwrap();
        assert_eq!(
            &p.setup.server_ca[..],
            &der[..n],
            "the pasted authority, as DER"
        );
        assert_eq!(
            HexBytes(p.device_secret).to_string(),
            SECRET,
            "the secret as bind-device printed it"
        );
        assert_eq!(HexBytes(p.server_key).to_string(), KEY);
    }

    #[test]
    fn a_value_too_long_for_its_field_is_refused() {
        let mut setup = Setup::default();
        let (mut s, mut k) = (None, None);
        let long = std::format!("wifi-ssid={}", "x".repeat(33));
        assert_eq!(
            set(&mut setup, &mut s, &mut k, &long),
            Err("refused: too long")
        );
        assert!(setup.wifi_ssid.is_empty());
    }
}
