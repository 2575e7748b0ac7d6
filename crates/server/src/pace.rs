//! Request pacing: a request's body must arrive within a deadline and at
//! a minimum data rate, or the request is answered 408 `request_timeout`
//! and its connection closed.
//!
//! hyper bounds how long a request's head may take (`header_read_timeout`)
//! but not its body: a client that sends a head and then one byte of body
//! holds a connection, and a file descriptor, for as long as it likes. One
//! client doing that 1,100 times ran the server out of descriptors. So
//! every request body goes through [`Paced`], which ends a body that is
//! late or slow; with the connection caps of [`crate::conn_limit`], a slow
//! client holds few connections, each briefly.
//!
//! The rule is [`Pace`], plain arithmetic on instants and byte counts; the
//! body wrapper only feeds it and sleeps until its next cut-off.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The grace before the minimum rate applies: a small body (every device
/// API body, every form) arrives within it in one piece, however the rate
/// is set.
pub const RATE_GRACE: Duration = Duration::from_secs(2);

/// How fast a request body must arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaceLimits {
    /// The whole body within this long after its head.
    pub deadline: Duration,
    /// After [`RATE_GRACE`], at least this many bytes per second on
    /// average since the head.
    pub min_bytes_per_s: u64,
}

/// The pace of one body: when it started and how much has arrived.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    started: Instant,
    received: u64,
    limits: PaceLimits,
}

impl Pace {
    /// A body whose head arrived at `started`.
    pub fn new(started: Instant, limits: PaceLimits) -> Pace {
        Pace {
            started,
            received: 0,
            limits,
        }
    }

    /// `n` more bytes arrived.
    pub fn received(&mut self, n: usize) {
        self.received = self.received.saturating_add(n as u64);
    }

    /// The instant the body becomes too slow if nothing more arrives: the
    /// deadline, or earlier the moment the bytes so far fall below the
    /// minimum rate (after the grace).
    pub fn cutoff(&self) -> Instant {
        let deadline = self.started + self.limits.deadline;
        let Some(rate) = std::num::NonZeroU64::new(self.limits.min_bytes_per_s) else {
            return deadline;
        };
        let earned_ms = self.received.saturating_mul(1000) / rate;
        let by_rate = self.started + RATE_GRACE + Duration::from_millis(earned_ms);
        by_rate.min(deadline)
    }

    /// Whether the body is too slow at `now`.
    pub fn too_slow(&self, now: Instant) -> bool {
        now >= self.cutoff()
    }
}

/// Why a body was cut off. Found again in an extractor's rejection by
/// [`cut_off`], which turns it into 408 `request_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("the request body came too slowly")]
pub struct TooSlow;

/// Whether `err`, or anything in its chain of sources, is [`TooSlow`].
pub fn cut_off(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.is::<TooSlow>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// A request body held to a [`Pace`].
pub struct Paced<B> {
    inner: B,
    pace: Pace,
    /// Made on the first wait only: most bodies never wait.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<B> Paced<B> {
    /// `inner`, whose head arrived now, held to `limits`.
    pub fn new(inner: B, limits: PaceLimits) -> Paced<B> {
        Paced {
            inner,
            pace: Pace::new(Instant::now(), limits),
            timer: None,
        }
    }
}

impl<B> Body for Paced<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.pace.received(data.len());
                }
                // Every byte counts: a frame that arrives after the cut-off
                // ends the body too, or a trickle just above nothing would
                // keep it alive.
                if this.pace.too_slow(Instant::now()) && !this.inner.is_end_stream() {
                    return Poll::Ready(Some(Err(Box::new(TooSlow))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let cutoff = this.pace.cutoff();
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(cutoff)));
                timer.as_mut().reset(cutoff);
                if Instant::now() >= cutoff || timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Some(Err(Box::new(TooSlow))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: PaceLimits = PaceLimits {
        deadline: Duration::from_secs(10),
        min_bytes_per_s: 1000,
    };

    #[test]
    fn a_stalled_body_is_cut_after_the_grace_and_what_it_earned() {
        let t0 = Instant::now();
        let mut pace = Pace::new(t0, LIMITS);
        assert_eq!(pace.cutoff(), t0 + RATE_GRACE);
        pace.received(500);
        assert_eq!(pace.cutoff(), t0 + RATE_GRACE + Duration::from_millis(500));
        assert!(!pace.too_slow(t0 + Duration::from_millis(2_499)));
        assert!(pace.too_slow(t0 + Duration::from_millis(2_500)));
    }

    #[test]
    fn a_fast_body_still_meets_the_deadline() {
        let t0 = Instant::now();
        let mut pace = Pace::new(t0, LIMITS);
        pace.received(1 << 30);
        assert_eq!(pace.cutoff(), t0 + LIMITS.deadline);
        let no_rate = PaceLimits {
            min_bytes_per_s: 0,
            ..LIMITS
        };
        assert_eq!(Pace::new(t0, no_rate).cutoff(), t0 + LIMITS.deadline);
    }

    #[test]
    fn the_cut_off_is_found_through_wrapping_errors() {
        let wrapped = axum::Error::new(TooSlow);
        assert!(cut_off(&wrapped));
        let other = axum::Error::new(std::io::Error::other("reset"));
        assert!(!cut_off(&other));
    }
}
