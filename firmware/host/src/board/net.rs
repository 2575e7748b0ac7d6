//! The network: the host's own, with async-io sockets, and random numbers.

use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};

use async_io::Async;
use embedded_io_adapters::futures_03::FromFutures;
use embedded_nal_async::{AddrType, Dns, TcpConnect};
use infusion_firmware_app::Network;
use infusion_firmware_app::board::JoinError;
use infusion_protocol::MacAddress;

/// The network: the host's own, already joined.
pub struct HostNet {
    mac: MacAddress,
    tcp: HostTcp,
    dns: HostDns,
}

impl HostNet {
    /// The host's network, for the pump with `mac`.
    pub fn new(mac: MacAddress) -> Self {
        HostNet {
            mac,
            tcp: HostTcp,
            dns: HostDns,
        }
    }
}

impl Network for HostNet {
    type Tcp = HostTcp;
    type Dns = HostDns;
    async fn join(&mut self, _ssid: &str, _password: &str) -> Result<(), JoinError> {
        Ok(())
    }
    fn sockets(&self) -> (&HostTcp, &HostDns) {
        (&self.tcp, &self.dns)
    }
    fn mac(&self) -> MacAddress {
        self.mac
    }
}

/// TCP through async-io.
pub struct HostTcp;

impl TcpConnect for HostTcp {
    type Error = std::io::Error;
    type Connection<'a> = FromFutures<Async<TcpStream>>;
    async fn connect<'a>(
        &'a self,
        remote: SocketAddr,
    ) -> Result<Self::Connection<'a>, Self::Error> {
        Ok(FromFutures::new(Async::<TcpStream>::connect(remote).await?))
    }
}

/// Names through the host's resolver (a pump's server is one name, looked
/// up once a connection).
pub struct HostDns;

impl Dns for HostDns {
    type Error = std::io::Error;
    async fn get_host_by_name(
        &self,
        host: &str,
        addr_type: AddrType,
    ) -> Result<IpAddr, Self::Error> {
        (host, 0)
            .to_socket_addrs()?
            .map(|a| a.ip())
            // `localhost` is IPv6 first on many hosts; a server on
            // 127.0.0.1 is the usual case, so IPv4 comes first.
            .find(|ip| match addr_type {
                AddrType::IPv4 | AddrType::Either => ip.is_ipv4(),
                AddrType::IPv6 => ip.is_ipv6(),
            })
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))
    }
    async fn get_host_by_address(
        &self,
        _addr: IpAddr,
        _result: &mut [u8],
    ) -> Result<usize, Self::Error> {
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
    }
}

/// The operating system's random numbers (the chip's hardware generator
/// on a board); the clock if they fail, which they do not on Linux.
pub fn random() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    })
}
