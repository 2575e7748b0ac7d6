//! The benches' error type: what could not be measured, and why.

use std::error::Error as StdError;

/// Why a bench or an analysis did not produce its figures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The arguments ask for something that cannot be measured (no user
    /// counts, a ramp-up longer than the run, an unreadable setting).
    #[error("{0}")]
    Invalid(String),
    /// A step failed: what was being done, and the failure underneath.
    #[error("{what}: {source}")]
    Failed {
        /// What was being done.
        what: String,
        /// The failure underneath.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

/// Shorthand for results of the benches.
pub type BenchResult<T> = Result<T, BenchError>;

/// Names what was being done when a step failed (and turns an absent
/// value into a failure), in the way the binary's messages read.
pub trait Context<T> {
    /// The failure, if any, with what was being done.
    fn context(self, what: impl Into<String>) -> BenchResult<T>;
    /// [`Context::context`] with the words made only on failure.
    fn with_context<S: Into<String>>(self, what: impl FnOnce() -> S) -> BenchResult<T>;
}

impl<T, E: StdError + Send + Sync + 'static> Context<T> for Result<T, E> {
    fn context(self, what: impl Into<String>) -> BenchResult<T> {
        self.map_err(|e| BenchError::Failed {
            what: what.into(),
            source: Box::new(e),
        })
    }

    fn with_context<S: Into<String>>(self, what: impl FnOnce() -> S) -> BenchResult<T> {
        self.map_err(|e| BenchError::Failed {
            what: what().into(),
            source: Box::new(e),
        })
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: impl Into<String>) -> BenchResult<T> {
        self.ok_or_else(|| BenchError::Invalid(what.into()))
    }

    fn with_context<S: Into<String>>(self, what: impl FnOnce() -> S) -> BenchResult<T> {
        self.ok_or_else(|| BenchError::Invalid(what().into()))
    }
}

/// A step that failed with no more to say than its own error.
macro_rules! failed_from {
    ($($t:ty => $what:literal),* $(,)?) => {
        $(impl From<$t> for BenchError {
            fn from(e: $t) -> BenchError {
                BenchError::Failed { what: $what.into(), source: Box::new(e) }
            }
        })*
    };
}

failed_from!(
    std::io::Error => "input or output",
    reqwest::Error => "an HTTP request",
    serde_json::Error => "JSON",
    infusion_store::StoreError => "the store",
    infusion_server::ApiError => "the server",
    infusion_server::StartError => "starting the server",
    rusqlite::Error => "SQLite",
    hdrhistogram::CreationError => "a histogram",
    infusion_accuracy::LogError => "the scale log",
    infusion_accuracy::plot::PlotError => "a figure",
    tokio::task::JoinError => "a task",
);

/// Refuses what cannot be measured, with a message like `format!`'s.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::error::BenchError::Invalid(format!($($arg)*)))
    };
}
pub(crate) use bail;
