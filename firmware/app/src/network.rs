//! The network loop: join, then the session the core asks for.

use embassy_futures::select::select;
use embassy_time::{Duration, Instant, Timer, with_timeout};
use embedded_io_async::{Read, Write};
use infusion_protocol::{
    DeviceSecret, IndexRequest, LoginRequest, ReportRequestRef, ReportResponse,
};
use infusion_pump_core::{Failure, Request};
use infusion_pump_persist::Setup;

use reqwless::client::{HttpClient, HttpResource, TlsConfig, TlsVerify};

use crate::api::{Api, Link, REQUEST_TIMEOUT, RX_MAX, TLS_RX, TLS_TX, TX_MAX};
use crate::board::Network;
use crate::shared::{Shared, now_ms};

/// Longest wait between two attempts to join.
const JOIN_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Bytes a plain HTTP request is gathered in before it is sent: a
/// request head and a small body leave in one TCP segment, not in a dozen
/// (a server may answer before a late body arrives, and close).
const SEGMENT: usize = 1_460;

/// How long a kept connection may stay idle before the next request
/// opens a new one: the server closes an idle connection after 10 s, and
/// a request sent as it closes would fail for nothing.
const KEEP_IDLE: Duration = Duration::from_secs(8);

/// Joins the network (again and again until it works), then sends every
/// request the core asks for and hands it each answer, over a connection
/// kept while it serves. Never returns. `random` seeds each TLS handshake.
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
    // `None` when the account does not fit the device API: the pump then
    // never logs in (provisioning refuses such values first).
    let login = LoginRequest::new(&setup.username, &setup.password, net.mac());
    let (tcp, dns) = net.sockets();
    let mut tx = [0u8; TX_MAX];
    let mut rx = [0u8; RX_MAX];
    let mut tls_rx = [0u8; TLS_RX];
    let mut tls_tx = [0u8; TLS_TX];
    // Plain HTTP's writes gathered into segments (TLS gathers its own).
    let mut segment = [0u8; SEGMENT];
    // Provisioning takes an https:// server only with its authority.
    let https = setup.server.starts_with("https://");
    let mut api = Api::new(&mut tx, &mut rx);
    let mut pending: Option<Request> = None;
    loop {
        let mut request = match pending.take() {
            Some(r) => r,
            None => due(shared).await,
        };
        // A new connection (and over HTTPS a handshake with fresh keys).
        let mut client = if https {
            let verify = TlsVerify::Certificate {
                ca: &setup.server_ca,
                cert: None,
                key: None,
            };
            let tls = TlsConfig::new(random(), &mut tls_rx, &mut tls_tx, verify);
            HttpClient::new_with_tls(tcp, dns, tls)
        } else {
            HttpClient::new(tcp, dns)
        };
        let Ok(Ok(conn)) = with_timeout(REQUEST_TIMEOUT, client.resource(&setup.server)).await
        else {
            failed(shared, &request);
            continue;
        };
        let mut conn = conn.into_buffered(&mut segment);
        loop {
            let link = exchange(&mut api, &mut conn, shared, request, login.as_ref(), secret).await;
            // The infusion may have changed (a new index): the motor looks.
            shared.motor_wake.signal(());
            if link == Link::Lost {
                break;
            }
            let done = Instant::now();
            request = due(shared).await;
            if done + KEEP_IDLE < Instant::now() {
                pending = Some(request);
                break;
            }
        }
    }
}

/// The next request the core asks for, waiting until one is due.
async fn due<M>(shared: &Shared<M>) -> Request {
    loop {
        let request = {
            let mut pump = shared.pump.borrow_mut();
            let now = now_ms();
            pump.tick(now);
            pump.poll_request(now)
        };
        if let Some(request) = request {
            return request;
        }
        let at = shared.pump.borrow().poll_timeout();
        let at = Instant::from_millis(at).max(Instant::now() + Duration::from_millis(1));
        select(Timer::at(at), shared.net_wake.wait()).await;
    }
}

/// Keeps why a request failed, for the console's status line.
fn note<M>(shared: &Shared<M>, failure: Option<&Failure>) {
    if let Some(f) = failure {
        shared.last_failure.set(Some(*f));
    }
}

/// No connection could be opened for `request`: the core hears a network
/// failure for it (and backs off).
fn failed<M>(shared: &Shared<M>, request: &Request) {
    shared.last_failure.set(Some(Failure::Network));
    let mut pump = shared.pump.borrow_mut();
    let now = now_ms();
    match request {
        Request::Login => pump.handle_login(now, Err(Failure::Network)),
        Request::Index { .. } => pump.handle_index(now, Err(Failure::Network)),
        Request::Report { .. } => pump.handle_report(now, Err(Failure::Network)),
    }
}

/// Sends `request` over `conn` and hands the answer to the core; says
/// whether `conn` may carry the next request.
async fn exchange<C: Read + Write, M>(
    api: &mut Api<'_>,
    conn: &mut HttpResource<'_, C>,
    shared: &Shared<M>,
    request: Request,
    login: Option<&LoginRequest>,
    secret: &DeviceSecret,
) -> Link {
    match request {
        Request::Login => {
            let (answer, link) = match login {
                Some(l) => api.login(conn, l.clone(), secret).await,
                None => (Err(Failure::Network), Link::Kept),
            };
            note(shared, answer.as_ref().err());
            shared
                .pump
                .borrow_mut()
                .handle_login(now_ms(), answer.as_ref().map_err(|e| *e));
            link
        }
        Request::Index { token, patient_id } => {
            let (answer, link) = api.index(conn, &token, &IndexRequest { patient_id }).await;
            note(shared, answer.as_ref().err());
            shared
                .pump
                .borrow_mut()
                .handle_index(now_ms(), answer.as_ref().map_err(|e| *e));
            link
        }
        Request::Report { token, patient_id } => {
            // The report's events are copied into the body while the core
            // is borrowed, and sent once it is let go.
            let prepared = {
                let pump = shared.pump.borrow();
                api.prepare(&ReportRequestRef {
                    patient_id,
                    events: pump.report_events(),
                })
            };
            let (answer, link) = match prepared {
                Ok(len) => {
                    api.send_prepared::<_, ReportResponse>(
                        conn,
                        Some(&token),
                        "/api/v1/device/report",
                        len,
                    )
                    .await
                }
                Err(f) => (Err(f), Link::Kept),
            };
            note(shared, answer.as_ref().err());
            shared
                .pump
                .borrow_mut()
                .handle_report(now_ms(), answer.as_ref().map_err(|e| *e));
            link
        }
    }
}
