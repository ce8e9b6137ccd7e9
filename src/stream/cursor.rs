//! The cursor a read returns so the next read continues where it stopped: the next offset of
//! each partition, tied to its source and topic. Opaque to the model (base64url of JSON), and
//! checked when it comes back, so a cursor of one topic cannot be replayed on another.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Wire {
    v: u8,
    s: String,
    t: String,
    p: Vec<(i32, i64)>,
    /// Messages before this time are still to be skipped (a read by time on a broker that
    /// could not look the time up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    b: Option<i64>,
}

/// Where a read continues.
#[derive(Debug, Clone, PartialEq)]
pub struct Resume {
    /// The next offset per partition.
    pub positions: BTreeMap<i32, i64>,
    /// Skip messages older than this (ms).
    pub skip_before: Option<i64>,
}

/// Encodes where a read of `topic` on `source` stopped.
pub fn encode(source: &str, topic: &str, resume: &Resume) -> String {
    let wire = Wire {
        v: 1,
        s: source.to_owned(),
        t: topic.to_owned(),
        p: resume.positions.iter().map(|(p, o)| (*p, *o)).collect(),
        b: resume.skip_before,
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).unwrap_or_default())
}

/// The positions in `cursor`, which must come from a read of `topic` on `source`.
pub fn decode(cursor: &str, source: &str, topic: &str) -> Result<Resume, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| "the cursor is not one a read returned; pass it back unchanged".to_owned())?;
    let wire: Wire = serde_json::from_slice(&bytes)
        .map_err(|_| "the cursor is not one a read returned; pass it back unchanged".to_owned())?;
    if wire.v != 1 {
        return Err("the cursor comes from another version of datamcp; start a new read".into());
    }
    if wire.s != source || wire.t != topic {
        return Err(format!(
            "the cursor belongs to topic '{}' of source '{}', not '{topic}' of '{source}'",
            wire.t, wire.s
        ));
    }
    Ok(Resume {
        positions: wire.p.into_iter().collect(),
        skip_before: wire.b,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_refuses_another_topic() {
        let resume = Resume {
            positions: BTreeMap::from([(0, 10), (2, 7)]),
            skip_before: Some(5),
        };
        let cursor = encode("shop", "orders", &resume);
        assert_eq!(decode(&cursor, "shop", "orders").expect("valid"), resume);
        assert!(
            decode(&cursor, "shop", "payments")
                .expect_err("an error")
                .contains("'orders'")
        );
        assert!(decode("garbage!", "shop", "orders").is_err());
    }
}
