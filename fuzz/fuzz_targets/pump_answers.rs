//! The server's answers as the pump parses them and acts on them: the
//! device's own decoder (serde-json-core) into the answer the pump is
//! waiting for, or into an error body, then the core's handler.
//!
//! The input is up to eight answers separated by `0xFF` bytes; the first
//! byte of each picks an answer (even) or an error body (odd). Whatever
//! they hold, nothing panics, and the infusion takes a new prescription
//! only from an index signed by the provisioned server key for this pump's
//! patient and MAC, never older than the one it runs.
#![no_main]

use std::sync::OnceLock;

use infusion_protocol::{
    ErrorBody, IndexResponse, IndexSigner, LoginResponse, MacAddress, PublicKey, ReportResponse,
    verify_index,
};
use infusion_pump_core::{Failure, Pump, PumpConfig, Request};
use libfuzzer_sys::fuzz_target;

/// The pump's MAC (the seeds' signed answers are for it and patient 7).
const MAC: MacAddress = MacAddress([0x02, 0, 0, 0, 0, 0x07]);

fn server_key() -> PublicKey {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    *KEY.get_or_init(|| IndexSigner::from_bytes(&[0x5e; 32]).public_key())
}

fn parse<T: serde::de::DeserializeOwned>(json: &[u8]) -> Result<T, Failure> {
    serde_json_core::from_slice::<T>(json)
        .map(|(v, _)| v)
        .map_err(|_| Failure::Network)
}

fn failure(json: &[u8]) -> Failure {
    parse::<ErrorBody>(json).map_or(Failure::Network, |e| Failure::Api(e.error))
}

fuzz_target!(|data: &[u8]| {
    let key = server_key();
    let mut pump: Pump<32> = Pump::new(PumpConfig {
        mac: MAC,
        server_key: Some(key),
        ..PumpConfig::default()
    });
    let mut now_ms = 0u64;
    for chunk in data.split(|b| *b == 0xFF).take(8) {
        let Some((&which, json)) = chunk.split_first() else {
            continue;
        };
        now_ms = now_ms.max(pump.poll_timeout()) + 1_000;
        pump.tick(now_ms);
        let _ = pump.take_steps(now_ms * 1_000);
        let error = which % 2 == 1;
        match pump.poll_request(now_ms) {
            None => {}
            Some(Request::Login) => {
                let answer = if error {
                    Err(failure(json))
                } else {
                    parse::<LoginResponse>(json)
                };
                pump.handle_login(now_ms, answer.as_ref().map_err(|e| *e));
            }
            Some(Request::Index { patient_id, .. }) => {
                let before = pump.infusion().version();
                let answer = if error {
                    Err(failure(json))
                } else {
                    parse::<IndexResponse>(json)
                };
                let genuine = answer.as_ref().is_ok_and(|r| {
                    verify_index(&key, patient_id, MAC, &r.index, &r.signature)
                        && r.index.version >= before
                });
                pump.handle_index(now_ms, answer.as_ref().map_err(|e| *e));
                if !genuine {
                    assert_eq!(pump.infusion().version(), before, "an unverified index ran");
                }
            }
            Some(Request::Report { .. }) => {
                let _ = pump.report_events();
                let answer = if error {
                    Err(failure(json))
                } else {
                    parse::<ReportResponse>(json)
                };
                pump.handle_report(now_ms, answer.as_ref().map_err(|e| *e));
            }
        }
    }
});
