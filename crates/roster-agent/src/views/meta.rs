//! Entry meta as JSON. The library stores meta as MessagePack bytes (`roster::Meta`, written
//! by rmp-serde with structs as maps); the API decodes them into a JSON value, and shows
//! bytes that are not JSON-shaped MessagePack (binary, extension types, maps with
//! non-string keys) as `{"bytes_base64": "..."}` (standard alphabet, padded).

use base64::Engine;
use roster::{Meta, Pid};
use serde_json::{Value, json};

/// The meta as a JSON value: `null` for the empty meta.
pub fn meta_json(meta: &Meta) -> Value {
    if meta.is_empty() {
        return Value::Null;
    }
    let bytes = meta.as_bytes();
    let mut reader = bytes;
    match rmp_serde::from_read::<_, Value>(&mut reader) {
        Ok(value) if reader.is_empty() => value,
        _ => json!({ "bytes_base64": base64::engine::general_purpose::STANDARD.encode(bytes) }),
    }
}

/// A pid as the API shows it: `<incarnation.serial>`, the incarnation in 16 hex digits.
pub fn pid_text(pid: Pid) -> String {
    pid.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shaped_meta_decodes_and_the_rest_shows_as_base64() {
        #[derive(serde::Serialize)]
        struct Session {
            region: &'static str,
            weight: u8,
        }
        let meta = Meta::encode(&Session {
            region: "eu",
            weight: 3,
        })
        .unwrap();
        assert_eq!(meta_json(&meta), json!({"region": "eu", "weight": 3}));
        assert_eq!(meta_json(&Meta::EMPTY), Value::Null);
        let binary = Meta::from_bytes(&[0xc4, 0x02, 0xff, 0x00]);
        assert_eq!(meta_json(&binary), json!({"bytes_base64": "xAL/AA=="}));
        let truncated = Meta::from_bytes(&[0x92, 0x01]);
        assert_eq!(meta_json(&truncated), json!({"bytes_base64": "kgE="}));
    }
}
