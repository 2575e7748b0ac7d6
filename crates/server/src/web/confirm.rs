//! Reviewing an order before it is sent. Every new order from the
//! prescription form is shown first beside the one it replaces, in the
//! drug's units and the pump's, with the soft limits it crosses; a small
//! form sends the same order again, as typed, with the prescriber's reason
//! (audited with it). An order from elsewhere (Resume, a suggestion) is
//! shown this way when it crosses a soft limit: the store refuses it
//! without a reason and names what it crosses. A hard limit is never
//! offered this way: it is refused outright.

use maud::{Markup, html};

use crate::web::session::WebUser;

/// The confirmation a refused order asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    /// The order, in words ("2 mL at 9 mL/h, run").
    pub order: String,
    /// The order it replaces, in words, or "none".
    pub was: String,
    /// The soft limits crossed, in words (none for an order inside the
    /// usual range, shown for review).
    pub crossed: Vec<String>,
    /// Where the confirmed order is posted: the form it came from.
    pub action: String,
    /// The order's fields as typed, sent again unchanged.
    pub fields: Vec<(&'static str, String)>,
    /// What the button does ("Send this order", "Approve this suggestion").
    pub send: &'static str,
}

impl Confirm {
    /// The confirmation on the page, for `user`'s session.
    pub fn render(&self, user: &WebUser) -> Markup {
        html! {
            div role="alert" class="notice confirm" id="confirm" {
                p { strong { "Check this order before it is sent." } }
                table class="review" {
                    tr { th scope="row" { "Now" } td { (infusion_store::capitalised(&self.was)) } }
                    tr { th scope="row" { "New" } td { (infusion_store::capitalised(&self.order)) } }
                }
                @if self.crossed.is_empty() {
                    p { "It is inside this patient's usual range." }
                } @else {
                    p { "It is outside this patient's usual range:" }
                    ul { @for c in &self.crossed { li { (infusion_store::capitalised(c)) "." } } }
                }
                form method="post" action=(self.action) {
                    input type="hidden" name="csrf" value=(user.csrf);
                    @for (name, value) in &self.fields { input type="hidden" name=(name) value=(value); }
                    label for="confirm-reason" {
                        @if self.crossed.is_empty() { "Reason for this order. It is kept in the audit trail." }
                        @else { "Why is it right for this patient? Your reason is kept in the audit trail." }
                    }
                    input id="confirm-reason" name="reason" required maxlength="500" autocomplete="off";
                    button type="submit" { (self.send) " with this reason" }
                }
                p class="hint" { "Or change the order below; nothing has been sent." }
            }
        }
    }
}
