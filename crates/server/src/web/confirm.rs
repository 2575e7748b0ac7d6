//! Confirming an order that crosses a soft limit. The store refuses such
//! an order without a reason and names what it crosses; the page then
//! shows those crossings and a small form that sends the same order
//! again, as typed, with the prescriber's reason (audited with it). A
//! hard limit is never offered this way: it is refused outright.

use maud::{Markup, html};

use crate::web::session::WebUser;

/// The confirmation a refused order asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    /// The order, in words ("2 mL at 9 mL/h, run").
    pub order: String,
    /// The soft limits crossed, in words.
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
                p { strong { "Check this order before it is sent: " (self.order) "." } " It is outside this patient's usual range:" }
                ul { @for c in &self.crossed { li { (infusion_store::capitalised(c)) "." } } }
                form method="post" action=(self.action) {
                    input type="hidden" name="csrf" value=(user.csrf);
                    @for (name, value) in &self.fields { input type="hidden" name=(name) value=(value); }
                    label for="confirm-reason" { "Why is it right for this patient? Your reason is kept in the audit trail." }
                    input id="confirm-reason" name="reason" required maxlength="500" autocomplete="off";
                    button type="submit" { (self.send) " with this reason" }
                }
                p class="hint" { "Or change the order below; nothing has been sent." }
            }
        }
    }
}
