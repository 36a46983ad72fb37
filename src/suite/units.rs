//! Durations, sizes and percentages as suites write them.
//!
//! Taurus accepts `500ms`, `1.5s`, `1m30s`, `2h`, `1d` and bare numbers (seconds); sizes
//! `B, kB/KiB, MB/MiB, GB/GiB`; percentages `5%`. Parsing errors say what was expected, so
//! `validate` can show them next to the user's value.

use std::fmt;
use std::time::Duration;

/// Why a value could not be read; the message names the accepted forms.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} `{text}`")]
pub struct UnitError {
    pub what: &'static str,
    pub text: String,
}

impl UnitError {
    pub fn hint(&self) -> &'static str {
        match self.what {
            "duration" => {
                "write a duration such as 500ms, 1.5s, 1m30s or 2h (a bare number is seconds; at most 365d)"
            }
            "size" => "write a size such as 512B, 64kB, 1.5MiB or 2GB",
            _ => "write a percentage such as 5% or 99.9%",
        }
    }
}

/// Parses a Taurus duration. Units may be chained (`1h30m`) and fractional (`1.5s`).
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let err = || UnitError {
        what: "duration",
        text: text.to_owned(),
    };
    let s = text.trim();
    if s.is_empty() {
        return Err(err());
    }
    if let Ok(seconds) = s.parse::<f64>() {
        return seconds_to_duration(seconds).ok_or_else(err);
    }
    let mut total = 0.0_f64;
    let mut rest = s;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return Err(err());
        }
        let number: f64 = rest[..number_len].parse().map_err(|_| err())?;
        rest = rest[number_len..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(err()),
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    seconds_to_duration(total).ok_or_else(err)
}

/// The longest duration a suite may give (a year): longer ones are typos, and would overflow
/// the clock arithmetic of a run.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

fn seconds_to_duration(seconds: f64) -> Option<Duration> {
    if !(seconds.is_finite() && seconds >= 0.0) {
        return None;
    }
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| *d <= MAX_DURATION)
}

/// Parses a size in bytes: `512`, `64kB`, `1.5MiB`, `2GB`.
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let err = || UnitError {
        what: "size",
        text: text.to_owned(),
    };
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let number: f64 = s[..split].parse().map_err(|_| err())?;
    let scale: f64 = match s[split..].trim() {
        "" | "B" => 1.0,
        "kB" | "KB" | "k" => 1e3,
        "KiB" => 1024.0,
        "MB" | "M" => 1e6,
        "MiB" => 1024.0 * 1024.0,
        "GB" | "G" => 1e9,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(err()),
    };
    let bytes = number * scale;
    if bytes.is_finite() && bytes >= 0.0 {
        Ok(bytes.round() as u64)
    } else {
        Err(err())
    }
}

/// Parses `5%` into 5.0.
pub fn parse_percent(text: &str) -> Result<f64, UnitError> {
    let err = || UnitError {
        what: "percentage",
        text: text.to_owned(),
    };
    let number = text.trim().strip_suffix('%').ok_or_else(err)?;
    number
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|p| p.is_finite())
        .ok_or_else(err)
}

/// Formats a duration the way suites write it (`1m30s`, `250ms`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return if ms < 1000 {
            format!("{ms}ms")
        } else {
            format!("{}s", d.as_secs_f64())
        };
    }
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// A duration that displays the way suites write it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Human(pub Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok: &[(&str, f64)] = &[
            ("500ms", 0.5),
            ("1.5s", 1.5),
            ("1m30s", 90.0),
            ("1m 30s", 90.0),
            ("2h", 7200.0),
            ("1d", 86400.0),
            ("10", 10.0),
            ("0.75", 0.75),
            ("1h30m", 5400.0),
        ];
        for (text, secs) in ok {
            assert_eq!(parse_duration(text).unwrap().as_secs_f64(), *secs, "{text}");
        }
        for bad in ["", "5x", "s", "-1", "1.2.3s", "10 mins", "ms5"] {
            assert!(parse_duration(bad).is_err(), "{bad} should fail");
        }
        // Beyond a year, or beyond what a Duration holds, is an error, never a panic.
        for huge in [
            "18446744073709551616",
            "18446744073709551616s",
            "1e300",
            "99999999999999999999999d",
            "366d",
        ] {
            assert!(parse_duration(huge).is_err(), "{huge} should fail");
        }
        assert_eq!(parse_duration("365d").unwrap(), MAX_DURATION);
    }

    #[test]
    fn sizes_and_percentages() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("64kB").unwrap(), 64_000);
        assert_eq!(parse_size("1.5MiB").unwrap(), 1_572_864);
        assert_eq!(parse_size("2GB").unwrap(), 2_000_000_000);
        assert!(parse_size("2XB").is_err());
        assert_eq!(parse_percent("5%").unwrap(), 5.0);
        assert_eq!(parse_percent("99.9 %").unwrap(), 99.9);
        assert!(parse_percent("5").is_err());
    }

    #[test]
    fn formats_like_suites() {
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
    }
}

/// serde helpers: durations serialise as suites write them (`1m30s`), not as `{secs, nanos}`.
pub mod human_serde {
    use std::time::Duration;

    use serde::Serializer;

    pub fn duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    pub fn option<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => duration(d, s),
            None => s.serialize_none(),
        }
    }
}
