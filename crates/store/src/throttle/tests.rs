use super::*;

fn row(attempts: i64, last_attempt_ms: i64, until_ms: i64) -> Option<Count> {
    Some(Count {
        attempts,
        last_attempt_ms,
        until_ms,
    })
}

#[test]
fn lockouts_double_after_the_free_attempts_up_to_the_cap() {
    let b = Backoff::ACCOUNT;
    let locks: Vec<i64> = (1..=8).map(|n| b.lockout_ms(n)).collect();
    assert_eq!(locks, [0, 0, 0, 0, 0, 1_000, 2_000, 4_000]);
    assert_eq!(b.lockout_ms(16), 15 * 60 * 1000);
    assert_eq!(b.lockout_ms(u32::MAX), 15 * 60 * 1000);
}

#[test]
fn paced_turns_slow_from_one_second_to_eight() {
    let p = Pacing::ADDRESS;
    assert_eq!(p.interval_ms(20), 0);
    assert_eq!(p.interval_ms(21), 1_000);
    assert_eq!(p.interval_ms(30), 1_000);
    assert_eq!(p.interval_ms(31), 2_000);
    assert_eq!(p.interval_ms(41), 4_000);
    assert_eq!(p.interval_ms(51), 8_000);
    assert_eq!(p.interval_ms(u32::MAX), 8_000);
}

#[test]
fn usernames_are_counted_whatever_their_case() {
    assert_eq!(ThrottleKey::account("Alice"), ThrottleKey::account("alice"));
}

#[test]
fn an_ipv6_address_counts_by_its_slash_64_and_a_mapped_ipv4_as_ipv4() {
    let a = |s: &str| ThrottleKey::address(s.parse().unwrap()).key;
    assert_eq!(a("2001:db8:1:2::1"), a("2001:db8:1:2:ffff::9"));
    assert_eq!(a("2001:db8:1:2::1"), "addr:2001:db8:1:2::");
    assert_ne!(a("2001:db8:1:2::1"), a("2001:db8:1:3::1"));
    assert_eq!(a("::ffff:192.0.2.1"), "addr:192.0.2.1");
    assert_eq!(a("192.0.2.1"), "addr:192.0.2.1");
}

#[test]
fn a_locked_username_refuses_and_counts_nothing() {
    let keys = [
        ThrottleKey::account("alice"),
        ThrottleKey::address([192, 0, 2, 1].into()),
    ];
    let d = decide(&keys, &[row(6, 100, 1_100), None], 600);
    assert_eq!(
        d.attempt,
        Attempt::Locked {
            retry_after_ms: 500
        }
    );
    assert!(d.rows.is_empty() && d.effects.audit.is_empty());
    // Once the lockout has passed, the attempt counts on both keys.
    let d = decide(&keys, &[row(6, 100, 1_100), None], 1_100);
    assert_eq!(d.attempt, Attempt::Allowed { wait_ms: 0 });
    assert_eq!(
        d.rows[0].1,
        Count {
            attempts: 7,
            last_attempt_ms: 1_100,
            until_ms: 3_100
        }
    );
    assert_eq!(
        d.rows[1].1,
        Count {
            attempts: 1,
            last_attempt_ms: 1_100,
            until_ms: 0
        }
    );
}

#[test]
fn only_the_first_lockout_of_a_window_is_audited() {
    let k = [ThrottleKey::account("alice")];
    let at = |n| decide(&k, &[row(n, 100, 0)], 100);
    let free = at(4);
    assert_eq!(free.rows[0].1.until_ms, 0);
    assert!(free.effects.audit.is_empty());
    let first = at(5);
    assert_eq!(first.rows[0].1.until_ms, 1_100);
    assert_eq!(first.effects.audit[0].actor, "user:alice");
    assert_eq!(
        first.effects.audit[0].action,
        crate::AuditAction::LoginLockedOut
    );
    let second = at(6);
    assert_eq!(second.rows[0].1.until_ms, 2_100);
    assert!(second.effects.audit.is_empty());
    assert_eq!(at(i64::MAX).rows[0].1.until_ms, 100 + 15 * 60 * 1000);
}

#[test]
fn a_paced_address_waits_its_turn_and_is_refused_beyond_five_seconds() {
    let k = [ThrottleKey::address([192, 0, 2, 1].into())];
    // The 21st attempt: the first turn is now; the next is a second on.
    let d = decide(&k, &[row(20, 1_000, 0)], 1_000);
    assert_eq!(d.attempt, Attempt::Allowed { wait_ms: 0 });
    assert_eq!(d.rows[0].1.until_ms, 2_000);
    assert_eq!(d.effects.audit[0].action, crate::AuditAction::LoginSlowed);
    // Attempts arriving at once queue behind each other, a second apart.
    let d = decide(&k, &[row(23, 1_000, 4_000)], 1_000);
    assert_eq!(d.attempt, Attempt::Allowed { wait_ms: 3_000 });
    assert_eq!(d.rows[0].1.until_ms, 5_000);
    assert!(d.effects.audit.is_empty());
    // Paced again within the hour (the count forgot and came back): no
    // second event.
    let d = decide(&k, &[row(20, 1_000, 2_000)], 1_000_000);
    assert!(d.effects.audit.is_empty());
    let d = decide(&k, &[row(26, 1_000, 7_000)], 1_000);
    assert_eq!(
        d.attempt,
        Attempt::Locked {
            retry_after_ms: 1_000
        }
    );
    assert!(d.rows.is_empty());
}

#[test]
fn an_address_forgets_an_attempt_every_three_minutes_and_all_after_an_hour() {
    let k = [ThrottleKey::address([192, 0, 2, 1].into())];
    let min = 60 * 1000;
    let d = decide(&k, &[row(25, 0, 0)], 9 * min);
    assert_eq!(d.rows[0].1.attempts, 23, "25 - 3 forgotten + this one");
    let d = decide(&k, &[row(200, 0, 0)], 61 * min);
    assert_eq!(d.rows[0].1.attempts, 1);
    // A username forgets nothing within the hour.
    let d = decide(&[ThrottleKey::account("a")], &[row(3, 0, 0)], 59 * min);
    assert_eq!(d.rows[0].1.attempts, 4);
}

#[test]
fn a_success_clears_a_username_and_gives_back_its_own_attempt_to_an_address() {
    let user = ThrottleKey::account("alice");
    let addr = ThrottleKey::address([192, 0, 2, 1].into());
    assert_eq!(settle(&user, Outcome::Succeeded), Settle::Clear);
    assert_eq!(settle(&addr, Outcome::Succeeded), Settle::GiveBack);
    assert_eq!(settle(&user, Outcome::Failed), Settle::Keep);
    assert_eq!(settle(&addr, Outcome::Failed), Settle::Keep);
    assert_eq!(settle(&user, Outcome::Unjudged), Settle::GiveBack);
    assert_eq!(settle(&addr, Outcome::Unjudged), Settle::GiveBack);
}
