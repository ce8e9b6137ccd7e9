//! Times as the stream tools take and show them: milliseconds since the epoch, or RFC 3339 text.
//! The day arithmetic is the crate's shared `calendar`.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer};

use crate::calendar::days_from_civil;

/// A point in time given as milliseconds since the epoch or as RFC 3339 text
/// (`2024-12-31T10:00:00Z`, `2024-12-31T11:00:00.250+01:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeArg {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    Millis(i64),
}

impl TimeArg {
    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        match self {
            TimeArg::Millis(ms) => ms,
        }
    }
}

impl<'de> Deserialize<'de> for TimeArg {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(ms) => Ok(TimeArg::Millis(ms)),
            Raw::Text(text) => parse_rfc3339(&text)
                .map(TimeArg::Millis)
                .ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "'{text}' is not a time: give milliseconds since the epoch or RFC 3339 such as 2024-12-31T10:00:00Z"
                    ))
                }),
        }
    }
}

impl JsonSchema for TimeArg {
    fn schema_name() -> Cow<'static, str> {
        "Time".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Milliseconds since the epoch, or RFC 3339 text such as 2024-12-31T10:00:00Z.",
            "type": ["integer", "string"]
        })
    }
}

/// Milliseconds since the epoch of RFC 3339 text; `None` when it is not one. A date alone means
/// its midnight in UTC; a space may stand for the `T`.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let text = text.trim();
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if b.len() == 10 {
        return Some(days * 86_400_000);
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 19 || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = padded.parse::<i64>().ok()?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" | "" => 0,
        zone if zone.len() == 6 && zone.as_bytes()[3] == b':' => {
            let sign = match zone.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hours: i64 = zone[1..3].parse().ok()?;
            let minutes: i64 = zone[4..6].parse().ok()?;
            sign * (hours * 60 + minutes)
        }
        _ => return None,
    };
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

pub use crate::calendar::format_millis;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_text_and_epoch_milliseconds_agree() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2024-12-31T10:00:00Z"),
            Some(1_735_639_200_000)
        );
        assert_eq!(
            parse_rfc3339("2024-12-31T11:00:00.25+01:00"),
            Some(1_735_639_200_250)
        );
        assert_eq!(parse_rfc3339("2024-12-31"), Some(1_735_603_200_000));
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59.999Z"), Some(-1));
        for bad in [
            "",
            "2024-13-01",
            "2024-12-31T25:00:00Z",
            "yesterday",
            "2024-12-31T10:00:00+0100",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn formatting_round_trips() {
        for ms in [0, -1, 1_735_639_200_250, 951_782_400_000] {
            assert_eq!(parse_rfc3339(&format_millis(ms)), Some(ms));
        }
        assert_eq!(format_millis(1_735_639_200_250), "2024-12-31T10:00:00.250Z");
    }
}
