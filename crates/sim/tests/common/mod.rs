//! What the simulator's test files share: the seeded accounts' password
//! and the test pump, provisioned as the test seeding binds it.

use infusion_protocol::MacAddress;
use infusion_sim::{Credentials, SimConfig, SimPump};
use infusion_testkit::{Served, device_secret};

/// The password of every seeded account.
pub const PASSWORD: &str = "a long enough password";

/// Patient `pat`'s pump `mac` talking to `url` (the server, or a proxy in
/// front of it), provisioned with the test device secret of `mac` and
/// `server`'s index key.
pub fn provisioned_pump(
    name: &str,
    url: &str,
    mac: &str,
    server: &Served,
    cfg: SimConfig,
) -> SimPump {
    SimPump::new(
        name,
        url,
        Credentials::provisioned(
            "pat",
            PASSWORD,
            MacAddress::parse(mac).unwrap(),
            device_secret(mac),
            server.server_key,
        ),
        cfg,
    )
}
