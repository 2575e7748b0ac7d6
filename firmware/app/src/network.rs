//! The network loop: join, then the session the core asks for.

use embassy_futures::select::select;
use embassy_time::{Duration, Instant, Timer};
use infusion_protocol::limits::{PASSWORD_MAX, USERNAME_MAX};
use infusion_protocol::{
    DeviceSecret, IndexRequest, LoginRequest, MacAddress, ReportRequestRef, ReportResponse,
};
use infusion_pump_core::Request;
use infusion_pump_persist::Setup;

use crate::api::{Api, RX_MAX, TLS_RX, TLS_TX, TX_MAX, Tls};
use crate::board::Network;
use crate::shared::{Shared, now_ms};

/// Longest wait between two attempts to join.
const JOIN_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Joins the network (again and again until it works), then sends every
/// request the core asks for and hands it each answer. Never returns.
/// `random` seeds each TLS handshake.
pub async fn run<N: Network, M>(
    net: &mut N,
    shared: &Shared<M>,
    setup: &Setup,
    secret: &DeviceSecret,
    random: fn() -> u64,
) -> ! {
    let mut wait = Duration::from_secs(1);
    while net
        .join(&setup.wifi_ssid, &setup.wifi_password)
        .await
        .is_err()
    {
        Timer::after(wait).await;
        wait = (wait * 2).min(JOIN_BACKOFF_MAX);
    }
    let login = login_request(setup, net.mac());
    let (tcp, dns) = net.sockets();
    let mut tx = [0u8; TX_MAX];
    let mut rx = [0u8; RX_MAX];
    let mut tls_rx = [0u8; TLS_RX];
    let mut tls_tx = [0u8; TLS_TX];
    // Provisioning takes an https:// server only with its authority.
    let tls = setup.server.starts_with("https://").then_some(Tls {
        ca: &setup.server_ca,
        rx: &mut tls_rx,
        tx: &mut tls_tx,
        random,
    });
    let mut api = Api::new(tcp, dns, &setup.server, &mut tx, &mut rx, tls);
    loop {
        let request = {
            let mut pump = shared.pump.borrow_mut();
            let now = now_ms();
            pump.tick(now);
            pump.poll_request(now)
        };
        let Some(request) = request else {
            let at = shared.pump.borrow().poll_timeout();
            let at = Instant::from_millis(at).max(Instant::now() + Duration::from_millis(1));
            select(Timer::at(at), shared.net_wake.wait()).await;
            continue;
        };
        exchange(&mut api, shared, request, login.as_ref(), secret).await;
        // The infusion may have changed (a new index): the motor looks.
        shared.motor_wake.signal(());
    }
}

/// The login body, or `None` when the provisioned account does not fit
/// the device API (the pump then never logs in, and says so by never
/// reporting: provisioning refuses such values first).
fn login_request(setup: &Setup, mac: MacAddress) -> Option<LoginRequest> {
    let mut username = heapless::String::<USERNAME_MAX>::new();
    let mut password = heapless::String::<PASSWORD_MAX>::new();
    username.push_str(&setup.username).ok()?;
    password.push_str(&setup.password).ok()?;
    Some(LoginRequest {
        username,
        password,
        mac,
        nonce: None,
        proof: None,
    })
}

async fn exchange<T, D, M>(
    api: &mut Api<'_, T, D>,
    shared: &Shared<M>,
    request: Request,
    login: Option<&LoginRequest>,
    secret: &DeviceSecret,
) where
    T: embedded_nal_async::TcpConnect,
    D: embedded_nal_async::Dns,
{
    match request {
        Request::Login => {
            let answer = match login {
                Some(l) => api.login(l.clone(), secret).await,
                None => Err(infusion_pump_core::Failure::Network),
            };
            shared
                .pump
                .borrow_mut()
                .handle_login(now_ms(), answer.as_ref().map_err(|e| *e));
        }
        Request::Index { token, patient_id } => {
            let answer = api.index(&token, &IndexRequest { patient_id }).await;
            shared
                .pump
                .borrow_mut()
                .handle_index(now_ms(), answer.as_ref().map_err(|e| *e));
        }
        Request::Report { token, patient_id } => {
            // The report's events are copied into the body before the
            // request goes out (`Api::post` serialises first).
            let answer = {
                let pump = shared.pump.borrow();
                let body = ReportRequestRef {
                    patient_id,
                    events: pump.report_events(),
                };
                api.prepare(&body)
            };
            let answer = match answer {
                Ok(len) => {
                    api.send_prepared::<ReportResponse>(Some(&token), "/api/v1/device/report", len)
                        .await
                }
                Err(f) => Err(f),
            };
            shared
                .pump
                .borrow_mut()
                .handle_report(now_ms(), answer.as_ref().map_err(|e| *e));
        }
    }
}
