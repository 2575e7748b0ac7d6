//! The administrator's view of alarm notifications: each delivery of the
//! institution's notifications on each channel, the undelivered first,
//! with its attempts and the last failure in the relay's or receiver's
//! own words, so that a dead webhook or a refused mailbox is seen.

use infusion_store::DeliveryRecord;
use jiff::tz::TimeZone;
use maud::{Markup, html};

use crate::web::format::time;

/// The section of the admin page.
pub fn section(records: &[DeliveryRecord], zone: &TimeZone) -> Markup {
    html! {
        section aria-labelledby="deliveries" {
            h2 id="deliveries" { "Alarm notifications" }
            p class="hint" { "Each alarm, escalation, acknowledgement and clear is sent to every webhook and by email to the people told who have an address; a failure is retried, from every second to every 5 minutes, for a day." }
            @if records.is_empty() { p { "None sent yet." } }
            @else {
                div class="table" tabindex="0" role="region" aria-label="Alarm notifications" {
                    table {
                        thead { tr {
                            th scope="col" { "Notification" } th scope="col" { "Patient and alarm" }
                            th scope="col" { "Channel" } th scope="col" { "Attempts" } th scope="col" { "State" }
                        } }
                        tbody { @for d in records { tr {
                            td { (d.id) " (" (d.event.as_str()) "), " (time(d.created_at_ms, zone)) }
                            td { (d.username) ": " (infusion_store::alarm_code_words(&d.alarm)) }
                            td { (d.channel) }
                            td { (d.attempts) }
                            td {
                                @if let Some(t) = d.delivered_at_ms { "delivered " (time(t, zone)) }
                                @else {
                                    strong class="alarm" { "not delivered" }
                                    @if let Some(e) = &d.last_error { ": " (e) }
                                    "; next try " (time(d.next_attempt_at_ms, zone))
                                }
                            }
                        } } }
                    }
                }
            }
        }
    }
}
