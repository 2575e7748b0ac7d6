//! The scale log: one reading per line, `time_s,mass_g`.

use std::io::{Read, Write};

/// One reading of the scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Seconds since the infusion was started.
    pub time_s: f64,
    /// The scale's reading, g.
    pub mass_g: f64,
}

/// Why a log cannot be analysed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The file could not be read or written.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A line is not two numbers.
    #[error("line {line}: expected `time_s,mass_g` (two numbers), found {found:?}")]
    Malformed {
        /// 1-based line number.
        line: u64,
        /// What was there.
        found: String,
    },
    /// Time went backwards, or a value is not finite or negative time.
    #[error("line {line}: {why}")]
    Invalid {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        why: &'static str,
    },
    /// Fewer than two readings: no flow can be measured.
    #[error("the log has {0} reading(s); at least two are needed")]
    TooShort(usize),
    /// A CSV-level error (bad quoting, bad UTF-8).
    #[error("{0}")]
    Csv(#[from] csv::Error),
}

/// Reads a log. A first line that is not numbers is taken as a header;
/// blank lines are skipped. Times must not go backwards.
pub fn read(input: impl Read) -> Result<Vec<Sample>, LogError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(input);
    let mut samples: Vec<Sample> = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record?;
        let line = record.position().map_or(i as u64 + 1, |p| p.line());
        if record.iter().all(str::is_empty) {
            continue;
        }
        let parsed = match (record.get(0), record.get(1), record.len()) {
            (Some(t), Some(m), 2) => t.parse::<f64>().ok().zip(m.parse::<f64>().ok()),
            _ => None,
        };
        let Some((time_s, mass_g)) = parsed else {
            if i == 0 {
                continue; // a header
            }
            return Err(LogError::Malformed {
                line,
                found: record.iter().collect::<Vec<_>>().join(","),
            });
        };
        if !time_s.is_finite() || !mass_g.is_finite() || time_s < 0.0 {
            return Err(LogError::Invalid {
                line,
                why: "time and mass must be finite numbers, time not negative",
            });
        }
        if samples.last().is_some_and(|s| time_s < s.time_s) {
            return Err(LogError::Invalid {
                line,
                why: "time goes backwards",
            });
        }
        samples.push(Sample { time_s, mass_g });
    }
    if samples.len() < 2 {
        return Err(LogError::TooShort(samples.len()));
    }
    Ok(samples)
}

/// Writes a log with its header, times to the microsecond and masses to
/// the microgram (the scale's resolution shows in the values themselves).
pub fn write(out: impl Write, samples: &[Sample]) -> Result<(), LogError> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(["time_s", "mass_g"])?;
    for s in samples {
        w.write_record([format!("{:.6}", s.time_s), format!("{:.6}", s.mass_g)])?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes_with_or_without_a_header() -> Result<(), LogError> {
        let samples = [
            Sample {
                time_s: 0.0,
                mass_g: 0.0,
            },
            Sample {
                time_s: 30.0,
                mass_g: 0.03,
            },
        ];
        let mut buf = Vec::new();
        write(&mut buf, &samples)?;
        assert_eq!(read(buf.as_slice())?, samples);
        assert_eq!(read("0,0\n\n30, 0.03\n".as_bytes())?, samples);
        Ok(())
    }

    #[test]
    fn refuses_bad_logs_with_the_line() {
        let e = read("time_s,mass_g\n0,0\n30,abc\n".as_bytes());
        assert!(
            matches!(e, Err(LogError::Malformed { line: 3, .. })),
            "{e:?}"
        );
        let e = read("0,0\n30,0.1\n20,0.2\n".as_bytes());
        assert!(matches!(e, Err(LogError::Invalid { line: 3, .. })), "{e:?}");
        let e = read("0,0\n".as_bytes());
        assert!(matches!(e, Err(LogError::TooShort(1))), "{e:?}");
        let e = read("0,0\n30,inf\n".as_bytes());
        assert!(matches!(e, Err(LogError::Invalid { line: 2, .. })), "{e:?}");
    }
}
