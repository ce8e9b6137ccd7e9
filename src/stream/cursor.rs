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
}

/// Encodes the positions of a read of `topic` on `source`.
pub fn encode(source: &str, topic: &str, positions: &BTreeMap<i32, i64>) -> String {
    let wire = Wire {
        v: 1,
        s: source.to_owned(),
        t: topic.to_owned(),
        p: positions.iter().map(|(p, o)| (*p, *o)).collect(),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).unwrap_or_default())
}

/// The positions in `cursor`, which must come from a read of `topic` on `source`.
pub fn decode(cursor: &str, source: &str, topic: &str) -> Result<BTreeMap<i32, i64>, String> {
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
    Ok(wire.p.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_refuses_another_topic() {
        let positions = BTreeMap::from([(0, 10), (2, 7)]);
        let cursor = encode("shop", "orders", &positions);
        assert_eq!(decode(&cursor, "shop", "orders").expect("valid"), positions);
        assert!(
            decode(&cursor, "shop", "payments")
                .expect_err("an error")
                .contains("'orders'")
        );
        assert!(decode("garbage!", "shop", "orders").is_err());
    }
}
