//! The pump's firmware for the ESP32-C3: the board-independent application
//! ([`infusion_firmware_app`]) on esp-hal, esp-rtos (embassy), esp-radio
//! Wi-Fi, embassy-net and reqwless. Everything particular to the chip is
//! here; the application holds nothing of it.
//!
//! Pins (the one place they are assigned; the README has the wiring):
//!
//! | Signal | GPIO | |
//! |---|---|---|
//! | DRV8834 STEP | 4 | output |
//! | DRV8834 DIR | 5 | output |
//! | DRV8834 nSLEEP | 6 | output |
//! | DRV8834 M0 | 7 | output |
//! | DRV8834 M1 | 10 | output |
//! | DRV8834 nFAULT | 3 | input, pull-up (open drain, low on a fault) |
//! | End-of-travel switch | 1 | input, pull-up, closed to ground |
//! | Stall / over-current comparator | 20 | input, high on a stall |
//! | Confirm button (the DevKit's BOOT) | 9 | input, pull-up, pressed to ground |
//! | Syringe-loaded button | 8 | input, pull-up; held at reset: provision again |
//! | Battery, through a 1:2 divider | 0 | ADC1 channel 0, 11 dB, curve-calibrated |
//!
//! The console is the chip's USB Serial/JTAG port (the DevKit's USB
//! socket). The pump's state lives in the `pump` data partition of
//! `partitions.csv` (64 KiB at 0x3F0000).
#![no_std]
#![no_main]

mod flash;

use embassy_executor::Spawner;
use embassy_net::dns::DnsSocket;
use embassy_net::tcp::client::{TcpClient, TcpClientState};
use embassy_net::{Runner, Stack, StackResources};
use embassy_time::{Duration, Timer};
use esp_backtrace as _;
use esp_hal::analog::adc::{Adc, AdcCalCurve, AdcConfig, AdcPin, Attenuation};
use esp_hal::clock::CpuClock;
use esp_hal::delay::Delay;
use esp_hal::gpio::{Input, InputConfig, Level, Output, OutputConfig, Pull};
use esp_hal::peripherals::ADC1;
use esp_hal::rng::Rng;
use esp_hal::timer::timg::{MwdtStage, TimerGroup, Wdt};
use esp_hal::usb::usb_serial_jtag::UsbSerialJtag;
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{
    AuthenticationMethodConfig, Config, ControllerConfig, Interface, WifiController,
};
use infusion_firmware_app::board::{Drive, JoinError};
use infusion_firmware_app::{Inputs, Network, Parts, Reading, Watchdog, run};
use infusion_protocol::MacAddress;
use infusion_pump_core::drv8834::Drv8834;
use infusion_pump_core::{DosePlan, Microsteps, Sensors};
use static_cell::StaticCell;

use flash::{AsyncFlash, PUMP_PARTITION};

esp_bootloader_esp_idf::esp_app_desc!();

/// TCP sockets for the device API: one request at a time.
type Tcp = TcpClient<'static, 1, 2048, 2048>;

/// The Wi-Fi station.
struct Wifi {
    controller: Option<WifiController<'static>>,
    spawner: Spawner,
    stack: Stack<'static>,
    tcp: Tcp,
    dns: DnsSocket<'static>,
    mac: MacAddress,
}

impl Network for Wifi {
    type Tcp = Tcp;
    type Dns = DnsSocket<'static>;

    async fn join(&mut self, ssid: &str, password: &str) -> Result<(), JoinError> {
        let Some(mut controller) = self.controller.take() else {
            // Joined before: the keeper task holds the link.
            self.stack.wait_config_up().await;
            return Ok(());
        };
        let auth = if password.is_empty() {
            AuthenticationMethodConfig::Open
        } else {
            AuthenticationMethodConfig::Wpa2Personal(
                password.try_into().map_err(|_| JoinError::Refused)?,
            )
        };
        let station = StationConfig::default()
            .with_ssid(ssid.try_into().map_err(|_| JoinError::Refused)?)
            .with_authentication(auth);
        if controller.set_config(&Config::Station(station)).is_err()
            || controller.connect_async().await.is_err()
        {
            self.controller = Some(controller);
            return Err(JoinError::Refused);
        }
        match keep_connected(controller) {
            Ok(task) => self.spawner.spawn(task),
            Err(_) => return Err(JoinError::Refused),
        }
        self.stack.wait_config_up().await;
        Ok(())
    }

    fn sockets(&self) -> (&Tcp, &DnsSocket<'static>) {
        (&self.tcp, &self.dns)
    }

    fn mac(&self) -> MacAddress {
        self.mac
    }
}

/// Rejoins whenever the access point drops the pump.
#[embassy_executor::task]
async fn keep_connected(mut controller: WifiController<'static>) {
    loop {
        let _ = controller.wait_for_disconnect_async().await;
        Timer::after(Duration::from_secs(2)).await;
        let _ = controller.connect_async().await;
    }
}

#[embassy_executor::task]
async fn net(mut runner: Runner<'static, Interface>) {
    runner.run().await
}

/// The battery's ADC pin, calibrated to millivolts.
type BatteryPin =
    AdcPin<esp_hal::peripherals::GPIO0<'static>, ADC1<'static>, AdcCalCurve<ADC1<'static>>>;

/// The sensor inputs on their pins.
struct Pins {
    adc: Adc<'static, ADC1<'static>, esp_hal::Blocking>,
    battery: BatteryPin,
    end_of_travel: Input<'static>,
    stall: Input<'static>,
    confirm: Input<'static>,
    loaded: Input<'static>,
    confirm_was: bool,
    loaded_was: bool,
}

impl Pins {
    /// The cell's voltage: twice what the divider gives the pin. A
    /// conversion that does not finish reads as a flat cell, so that a
    /// broken ADC warns rather than hides a low battery.
    fn battery_mv(&mut self) -> u16 {
        for _ in 0..1_000 {
            match self.adc.read_oneshot(&mut self.battery) {
                Ok(mv) => return mv.saturating_mul(2),
                Err(nb::Error::WouldBlock) => continue,
                Err(nb::Error::Other(())) => break,
            }
        }
        0
    }
}

impl Inputs for Pins {
    fn read(&mut self) -> Reading {
        let confirm = self.confirm.is_low();
        let loaded = self.loaded.is_low();
        let reading = Reading {
            sensors: Sensors {
                stalled: self.stall.is_high(),
                over_current: false,
                driver_fault: false,
                end_of_travel: self.end_of_travel.is_low(),
                battery_mv: self.battery_mv(),
            },
            // A press is its falling edge, not every reading it is held.
            confirm: confirm && !self.confirm_was,
            syringe_loaded: loaded && !self.loaded_was,
        };
        self.confirm_was = confirm;
        self.loaded_was = loaded;
        reading
    }
}

/// The main watchdog of timer group 1.
struct Dog(Wdt<esp_hal::peripherals::TIMG1<'static>>);

impl Watchdog for Dog {
    fn start(&mut self, timeout_ms: u32) {
        self.0.set_timeout(
            MwdtStage::Stage0,
            esp_hal::time::Duration::from_millis(u64::from(timeout_ms)),
        );
        self.0.enable();
        self.0.feed();
    }
    fn feed(&mut self) {
        self.0.feed();
    }
}

type Motor = Drive<
    Drv8834<
        Output<'static>,
        Output<'static>,
        Output<'static>,
        Output<'static>,
        Output<'static>,
        Input<'static>,
    >,
    Delay,
>;
type C3Parts = Parts<Wifi, Motor, Pins, Dog, AsyncFlash, UsbSerialJtag<'static, esp_hal::Async>>;

/// The chip's hardware random number generator (truly random while the
/// radio runs): back-off jitter and TLS handshake keys.
fn random() -> u64 {
    let rng = Rng::new();
    (u64::from(rng.random()) << 32) | u64::from(rng.random())
}

#[embassy_executor::task]
async fn pump(parts: C3Parts) {
    let halt = run(parts).await;
    esp_println::println!("pump stopped: {:?}", halt);
}

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
    // The Wi-Fi driver's own allocations; the application allocates nothing.
    esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: 64 * 1024);
    esp_alloc::heap_allocator!(size: 36 * 1024);
    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);

    let output = OutputConfig::default();
    let pulled_up = InputConfig::default().with_pull(Pull::Up);
    let driver = Drv8834::new(
        Output::new(peripherals.GPIO4, Level::Low, output),
        Output::new(peripherals.GPIO5, Level::Low, output),
        Output::new(peripherals.GPIO6, Level::Low, output),
        Output::new(peripherals.GPIO7, Level::Low, output),
        Output::new(peripherals.GPIO10, Level::Low, output),
        Input::new(peripherals.GPIO3, pulled_up),
    );
    let mut delay = Delay::new();
    let motor = match driver {
        Ok(mut d) => {
            let _ = d.set_microsteps(Microsteps::X16, &mut delay);
            Drive { driver: d, delay }
        }
        Err(_) => loop {
            esp_println::println!("the motor driver's pins did not start");
            Timer::after(Duration::from_secs(5)).await;
        },
    };
    let loaded = Input::new(peripherals.GPIO8, pulled_up);
    let provision = loaded.is_low();
    let mut adc_config = AdcConfig::new();
    let battery = adc_config
        .enable_pin_with_cal::<_, AdcCalCurve<ADC1>>(peripherals.GPIO0, Attenuation::_11dB);
    let inputs = Pins {
        adc: Adc::new(peripherals.ADC1, adc_config),
        battery,
        end_of_travel: Input::new(peripherals.GPIO1, pulled_up),
        stall: Input::new(
            peripherals.GPIO20,
            InputConfig::default().with_pull(Pull::Down),
        ),
        confirm: Input::new(peripherals.GPIO9, pulled_up),
        loaded,
        confirm_was: false,
        loaded_was: provision,
    };

    let interface = Interface::station();
    let mac = MacAddress(interface.mac_address());
    let controller = match WifiController::new(peripherals.WIFI, ControllerConfig::default()) {
        Ok(c) => c,
        Err(e) => loop {
            esp_println::println!("Wi-Fi did not start: {:?}", e);
            Timer::after(Duration::from_secs(5)).await;
        },
    };
    let seed = random();
    static RESOURCES: StaticCell<StackResources<3>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        interface,
        embassy_net::Config::dhcpv4(Default::default()),
        RESOURCES.init(StackResources::new()),
        seed,
    );
    if let Ok(t) = net(runner) {
        spawner.spawn(t);
    }
    static TCP: StaticCell<TcpClientState<1, 2048, 2048>> = StaticCell::new();
    let network = Wifi {
        controller: Some(controller),
        spawner,
        stack,
        tcp: TcpClient::new(stack, TCP.init(TcpClientState::new())),
        dns: DnsSocket::new(stack),
        mac,
    };
    let parts = Parts {
        network,
        motor,
        inputs,
        watchdog: Dog(TimerGroup::new(peripherals.TIMG1).wdt),
        flash: AsyncFlash::new(peripherals.FLASH),
        flash_range: PUMP_PARTITION,
        console: UsbSerialJtag::new(peripherals.USB_DEVICE).into_async(),
        provision,
        plan: DosePlan::PAPER,
        random,
    };
    if let Ok(t) = pump(parts) {
        spawner.spawn(t);
    }
    loop {
        Timer::after(Duration::from_secs(3600)).await;
    }
}
