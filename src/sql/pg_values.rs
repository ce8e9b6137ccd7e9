//! PostgreSQL values, in the binary wire format sqlx receives, to JSON without loss.
//!
//! Integers and floats become JSON numbers (NaN and ±Infinity become the strings PostgreSQL
//! prints); NUMERIC and MONEY become exact decimal strings, because a JSON number would be read as
//! a binary float by most clients; dates, times and timestamps become ISO 8601 strings
//! (`timestamptz` in UTC with `Z`), intervals ISO 8601 durations; UUIDs, inet/cidr, macaddr and
//! bit strings their usual text; JSON and JSONB the JSON value itself; bytea base64; arrays nested
//! JSON arrays; composites objects; enums and text strings. A type this module does not know
//! (from an extension, say) becomes base64 of its binary form.

use base64::Engine as _;
use serde_json::{Map, Value};
use sqlx::postgres::{PgTypeKind, PgValueFormat, PgValueRef};
use sqlx::{TypeInfo as _, ValueRef as _};

/// Microseconds between 1970-01-01 and PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;

/// The JSON value of one column value.
pub fn to_json(value: PgValueRef<'_>) -> Value {
    if value.is_null() {
        return Value::Null;
    }
    let info = value.type_info().into_owned();
    let Ok(bytes) = value.as_bytes() else {
        return Value::Null;
    };
    if value.format() == PgValueFormat::Text {
        return Value::String(String::from_utf8_lossy(bytes).into_owned());
    }
    match info.kind() {
        PgTypeKind::Enum(_) => return text(bytes),
        PgTypeKind::Domain(base) => {
            if let Some(oid) = base.oid() {
                return decode(oid.0, bytes).unwrap_or_else(|| opaque(bytes));
            }
        }
        PgTypeKind::Composite(fields) => {
            let names: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
            return composite(bytes, Some(&names)).unwrap_or_else(|| opaque(bytes));
        }
        _ => {}
    }
    match info.oid() {
        Some(oid) => decode(oid.0, bytes).unwrap_or_else(|| opaque(bytes)),
        None => {
            // Types sqlx knows only by name: enums and text-like extension types send text.
            if info.name().is_empty() {
                opaque(bytes)
            } else {
                text(bytes)
            }
        }
    }
}

/// Decodes a binary value of built-in type `oid`; `None` for types it does not know.
fn decode(oid: u32, b: &[u8]) -> Option<Value> {
    Some(match oid {
        16 => Value::Bool(*b.first()? != 0),
        17 => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        18 => text(b),
        19 | 25 | 142 | 705 | 1042 | 1043 => text(b),
        20 => Value::from(i64::from_be_bytes(b.try_into().ok()?)),
        21 => Value::from(i16::from_be_bytes(b.try_into().ok()?)),
        23 => Value::from(i32::from_be_bytes(b.try_into().ok()?)),
        26 | 28 | 29 => Value::from(u32::from_be_bytes(b.try_into().ok()?)),
        114 => serde_json::from_slice(b).unwrap_or_else(|_| text(b)),
        3802 => serde_json::from_slice(b.get(1..)?).unwrap_or_else(|_| text(b)),
        700 => float(f64::from(f32::from_be_bytes(b.try_into().ok()?))),
        701 => float(f64::from_be_bytes(b.try_into().ok()?)),
        790 => Value::String(fixed_point(i64::from_be_bytes(b.try_into().ok()?), 2)),
        1700 => Value::String(numeric(b)?),
        1082 => Value::String(date(i32::from_be_bytes(b.try_into().ok()?))),
        1083 => Value::String(time_of_day(i64::from_be_bytes(b.try_into().ok()?))),
        1266 => {
            let micros = i64::from_be_bytes(b.get(..8)?.try_into().ok()?);
            let west = i32::from_be_bytes(b.get(8..12)?.try_into().ok()?);
            Value::String(format!("{}{}", time_of_day(micros), offset(-west)))
        }
        1114 => Value::String(timestamp(i64::from_be_bytes(b.try_into().ok()?), "")),
        1184 => Value::String(timestamp(i64::from_be_bytes(b.try_into().ok()?), "Z")),
        1186 => Value::String(interval(b)?),
        2950 => Value::String(uuid(b)?),
        650 | 869 => Value::String(inet(b)?),
        829 => Value::String(
            b.iter()
                .map(|x| format!("{x:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
        ),
        1560 | 1562 => Value::String(bits(b)?),
        2249 => composite(b, None)?,
        _ if is_array(oid) => array(b)?,
        _ => return None,
    })
}

fn text(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

fn opaque(b: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(b))
}

fn float(f: f64) -> Value {
    match serde_json::Number::from_f64(f) {
        Some(n) => Value::Number(n),
        None if f.is_nan() => Value::from("NaN"),
        None if f > 0.0 => Value::from("Infinity"),
        None => Value::from("-Infinity"),
    }
}

/// An integer count of 10^-scale units as an exact decimal string.
fn fixed_point(units: i64, scale: u32) -> String {
    let divisor = 10i128.pow(scale);
    let units = i128::from(units);
    let sign = if units < 0 { "-" } else { "" };
    let (whole, fraction) = (units.abs() / divisor, units.abs() % divisor);
    format!("{sign}{whole}.{fraction:0width$}", width = scale as usize)
}

/// NUMERIC: base-10000 digits with a weight, a sign and a display scale.
fn numeric(b: &[u8]) -> Option<String> {
    let field = |i: usize| b.get(i..i + 2).map(|s| u16::from_be_bytes([s[0], s[1]]));
    let ndigits = usize::from(field(0)?);
    let weight = i16::from_be_bytes(field(2)?.to_be_bytes());
    let sign = field(4)?;
    let dscale = usize::from(field(6)?);
    match sign {
        0xC000 => return Some("NaN".to_owned()),
        0xD000 => return Some("Infinity".to_owned()),
        0xF000 => return Some("-Infinity".to_owned()),
        _ => {}
    }
    let digits: Vec<u16> = (0..ndigits)
        .map(|i| field(8 + 2 * i))
        .collect::<Option<_>>()?;
    let mut integer = String::new();
    // Groups 0..=weight are before the point.
    for group in 0..=i32::from(weight) {
        let digit = digits.get(group as usize).copied().unwrap_or(0);
        if integer.is_empty() {
            if digit != 0 {
                integer = digit.to_string();
            }
        } else {
            integer.push_str(&format!("{digit:04}"));
        }
    }
    if integer.is_empty() {
        integer.push('0');
    }
    let mut fraction = String::new();
    let mut group = i32::from(weight) + 1;
    while fraction.len() < dscale {
        let digit = if group < 0 {
            0
        } else {
            digits.get(group as usize).copied().unwrap_or(0)
        };
        fraction.push_str(&format!("{digit:04}"));
        group += 1;
    }
    fraction.truncate(dscale);
    let sign = if sign == 0x4000 { "-" } else { "" };
    Some(if dscale == 0 {
        format!("{sign}{integer}")
    } else {
        format!("{sign}{integer}.{fraction}")
    })
}

fn date(days: i32) -> String {
    match days {
        i32::MAX => "infinity".to_owned(),
        i32::MIN => "-infinity".to_owned(),
        days => date_from_days(i64::from(days)),
    }
}

fn time_of_day(micros: i64) -> String {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    let mut out = format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    if fraction != 0 {
        out.push_str(format!(".{fraction:06}").trim_end_matches('0'));
    }
    out
}

fn timestamp(micros: i64, zone: &str) -> String {
    match micros {
        i64::MAX => "infinity".to_owned(),
        i64::MIN => "-infinity".to_owned(),
        micros => {
            let days = micros.div_euclid(86_400_000_000);
            let in_day = micros.rem_euclid(86_400_000_000);
            format!("{}T{}{zone}", date_from_days(days), time_of_day(in_day))
        }
    }
}

fn date_from_days(days: i64) -> String {
    crate::calendar::iso_date(days + PG_EPOCH_DAYS)
}

/// A UTC offset in seconds east as `+hh:mm`.
fn offset(east: i32) -> String {
    let sign = if east < 0 { '-' } else { '+' };
    let east = east.abs();
    format!("{sign}{:02}:{:02}", east / 3600, east / 60 % 60)
}

/// INTERVAL as an ISO 8601 duration, e.g. `P1Y2M3DT4H5M6.5S`.
fn interval(b: &[u8]) -> Option<String> {
    let micros = i64::from_be_bytes(b.get(..8)?.try_into().ok()?);
    let days = i32::from_be_bytes(b.get(8..12)?.try_into().ok()?);
    let months = i32::from_be_bytes(b.get(12..16)?.try_into().ok()?);
    let mut out = String::from("P");
    let (years, months) = (months / 12, months % 12);
    for (n, unit) in [(years, 'Y'), (months, 'M'), (days, 'D')] {
        if n != 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if micros != 0 {
        out.push('T');
        let (hours, rest) = (micros / 3_600_000_000, micros % 3_600_000_000);
        let (minutes, rest) = (rest / 60_000_000, rest % 60_000_000);
        if hours != 0 {
            out.push_str(&format!("{hours}H"));
        }
        if minutes != 0 {
            out.push_str(&format!("{minutes}M"));
        }
        if rest != 0 {
            let seconds = fixed_point(rest, 6);
            out.push_str(seconds.trim_end_matches('0').trim_end_matches('.'));
            out.push('S');
        }
    }
    if out == "P" {
        out.push_str("T0S");
    }
    Some(out)
}

fn uuid(b: &[u8]) -> Option<String> {
    if b.len() != 16 {
        return None;
    }
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

fn inet(b: &[u8]) -> Option<String> {
    let (family, bits, is_cidr, len) = (*b.first()?, *b.get(1)?, *b.get(2)?, *b.get(3)?);
    let address = b.get(4..4 + usize::from(len))?;
    let (text, full) = match family {
        2 => (
            std::net::Ipv4Addr::from(<[u8; 4]>::try_from(address).ok()?).to_string(),
            32,
        ),
        3 => (
            std::net::Ipv6Addr::from(<[u8; 16]>::try_from(address).ok()?).to_string(),
            128,
        ),
        _ => return None,
    };
    Some(if is_cidr == 1 || bits != full {
        format!("{text}/{bits}")
    } else {
        text
    })
}

fn bits(b: &[u8]) -> Option<String> {
    let length = usize::try_from(i32::from_be_bytes(b.get(..4)?.try_into().ok()?)).ok()?;
    let data = b.get(4..)?;
    Some(
        (0..length)
            .map(|i| {
                if data[i / 8] & (0x80 >> (i % 8)) != 0 {
                    '1'
                } else {
                    '0'
                }
            })
            .collect(),
    )
}

/// Whether `oid` is one of PostgreSQL's built-in array types (`_int4` and so on).
fn is_array(oid: u32) -> bool {
    matches!(
        oid,
        143 | 199 | 629 | 651 | 719 | 791 | 1000..=1017 | 1019..=1028 | 1034 | 1040 | 1041
            | 1115 | 1182 | 1183 | 1185 | 1187 | 1231 | 1263 | 1270 | 1561 | 1563 | 2201
            | 2207 | 2211 | 2287 | 2951 | 3221 | 3643 | 3644 | 3645 | 3735 | 3770 | 3807
            | 3905 | 3907 | 3909 | 3911 | 3913 | 3927 | 4073 | 4090 | 4192
    )
}

/// Arrays: dimensions, then each element with its length (-1 for NULL), decoded by the element
/// type's OID. Multi-dimensional arrays become nested JSON arrays.
fn array(b: &[u8]) -> Option<Value> {
    let int = |at: usize| -> Option<i32> {
        Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    let dimensions = usize::try_from(int(0)?).ok()?;
    let element_oid = u32::try_from(int(8)?).ok()?;
    if dimensions == 0 {
        return Some(Value::Array(Vec::new()));
    }
    let lengths: Vec<usize> = (0..dimensions)
        .map(|d| int(12 + 8 * d).and_then(|n| usize::try_from(n).ok()))
        .collect::<Option<_>>()?;
    let mut at = 12 + 8 * dimensions;
    let total: usize = lengths.iter().product();
    let mut elements = Vec::with_capacity(total);
    for _ in 0..total {
        let length = int(at)?;
        at += 4;
        if length < 0 {
            elements.push(Value::Null);
            continue;
        }
        let length = usize::try_from(length).ok()?;
        let bytes = b.get(at..at + length)?;
        at += length;
        elements.push(decode(element_oid, bytes).unwrap_or_else(|| opaque(bytes)));
    }
    Some(nest(&mut elements.into_iter(), &lengths))
}

fn nest(elements: &mut impl Iterator<Item = Value>, lengths: &[usize]) -> Value {
    match lengths {
        [] => Value::Null,
        [last] => Value::Array(elements.take(*last).collect()),
        [first, rest @ ..] => Value::Array((0..*first).map(|_| nest(elements, rest)).collect()),
    }
}

/// Composite values (rows): an object when the field names are known, else an array.
fn composite(b: &[u8], names: Option<&[&str]>) -> Option<Value> {
    let int = |at: usize| -> Option<i32> {
        Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    let count = usize::try_from(int(0)?).ok()?;
    let mut at = 4;
    let mut values = Vec::with_capacity(count);
    for _ in 0..count {
        let oid = u32::try_from(int(at)?).ok()?;
        let length = int(at + 4)?;
        at += 8;
        if length < 0 {
            values.push(Value::Null);
            continue;
        }
        let length = usize::try_from(length).ok()?;
        let bytes = b.get(at..at + length)?;
        at += length;
        values.push(decode(oid, bytes).unwrap_or_else(|| opaque(bytes)));
    }
    Some(match names {
        Some(names) if names.len() == values.len() => Value::Object(
            names
                .iter()
                .map(|n| (*n).to_owned())
                .zip(values)
                .collect::<Map<String, Value>>(),
        ),
        _ => Value::Array(values),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numerics_are_exact_decimal_strings() {
        // 12345.678 with dscale 3: digits [1, 2345, 6780], weight 1.
        let bytes = [0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1A, 0x7C];
        assert_eq!(numeric(&bytes).as_deref(), Some("12345.678"));
        // -0.05 with dscale 2: digits [500], weight -1, negative.
        let bytes = [0, 1, 0xFF, 0xFF, 0x40, 0, 0, 2, 0x01, 0xF4];
        assert_eq!(numeric(&bytes).as_deref(), Some("-0.05"));
        assert_eq!(fixed_point(-12_345, 2), "-123.45");
    }

    #[test]
    fn times_are_iso_8601() {
        assert_eq!(date(0), "2000-01-01");
        assert_eq!(
            timestamp(86_400_000_000 + 1_500_000, "Z"),
            "2000-01-02T00:00:01.5Z"
        );
        let mut interval_bytes = Vec::new();
        interval_bytes.extend(3_723_500_000i64.to_be_bytes());
        interval_bytes.extend(3i32.to_be_bytes());
        interval_bytes.extend(14i32.to_be_bytes());
        assert_eq!(
            interval(&interval_bytes).as_deref(),
            Some("P1Y2M3DT1H2M3.5S")
        );
    }
}
