//! Email for the people an alarm is told to: each notification to each
//! recipient with an address, through the hospital's mail relay (lettre's
//! SMTP transport), upgraded with STARTTLS when the relay offers it.

use async_trait::async_trait;
use infusion_store::{Channel, NoticeEvent, Outgoing, utc_time};
use lettre::message::Mailbox;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::Sender;

/// The mail relay (`--smtp-url smtp://host:port`) and the sender's
/// address (`--mail-from`).
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// Relay host.
    pub host: String,
    /// Relay port (25 or 587 usually).
    pub port: u16,
    /// The From address.
    pub from: String,
}

/// The email channel.
pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Email {
    /// A sender through `c`.
    pub fn new(c: &SmtpConfig) -> Result<Email, String> {
        let from = c
            .from
            .parse::<Mailbox>()
            .map_err(|e| format!("--mail-from {}: {e}", c.from))?;
        let tls = TlsParameters::new(c.host.clone())
            .map_err(|e| format!("TLS for the mail relay {}: {e}", c.host))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.host)
            .port(c.port)
            .tls(Tls::Opportunistic(tls))
            .timeout(Some(std::time::Duration::from_secs(10)))
            .build();
        Ok(Email { transport, from })
    }
}

/// What the email says: a subject a nurse reads on a phone's lock screen,
/// and the facts in plain words.
pub fn letter(o: &Outgoing) -> (String, String) {
    let what = infusion_store::alarm_code_words(&o.alarm);
    let priority = o.priority.as_str().to_uppercase();
    let (lead, tail) = match o.event {
        NoticeEvent::Raised => ("", "Please go to the patient and acknowledge the alarm."),
        NoticeEvent::Escalated => (
            "No one has acknowledged: ",
            "Please go to the patient, or ask who is with them, and acknowledge the alarm.",
        ),
        NoticeEvent::Acknowledged => ("Acknowledged: ", "Someone is dealing with it."),
        NoticeEvent::Cleared => ("Cleared: ", "The condition is gone."),
    };
    let subject = format!("[{priority}] {lead}{what} ({})", o.patient_name);
    let body = format!(
        "{lead}{what}\n\nPatient: {} ({})\nPriority: {}\nRaised: {}\nYou are told as: {}\n\n{tail}\n\nNotification {} of the infusion server.\n",
        o.patient_name,
        o.username,
        o.priority.as_str(),
        utc_time(o.raised_at_ms),
        o.step.words(),
        o.id,
    );
    (subject, body)
}

#[async_trait]
impl Sender for Email {
    fn channel(&self) -> Channel {
        Channel::Email
    }

    async fn deliver(&self, o: &Outgoing) -> Result<(), String> {
        let to = o
            .channel
            .strip_prefix("email:")
            .ok_or_else(|| format!("not an email delivery: {}", o.channel))?;
        let to = to
            .parse::<Mailbox>()
            .map_err(|e| format!("the address {to:?}: {e}"))?;
        let (subject, body) = letter(o);
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| format!("building the email: {e}"))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| format!("the mail relay: {e}"))
    }
}
