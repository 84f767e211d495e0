//! Checks of the keys and prefixes a request names, before the library sees them (the
//! library's reads answer "nothing" for an invalid key; the API says why).

use crate::errors::ApiError;

/// The longest key the API accepts, in bytes: the library's default `max_key_bytes`.
pub const MAX_KEY_BYTES: usize = 1024;

/// Checks a key of a single name or group.
///
/// # Errors
///
/// 400 `bad_key` for an empty key, a key over [`MAX_KEY_BYTES`], or a prefix (a key
/// ending with `/`).
pub fn check_key(key: &str) -> Result<(), ApiError> {
    let refuse = |why: &str| ApiError::bad_request("bad_key", format!("key {key:?} {why}"));
    if key.is_empty() {
        return Err(refuse("is empty: give a key such as user/123"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(refuse(&format!("is over {MAX_KEY_BYTES} bytes")));
    }
    if key.ends_with('/') {
        return Err(refuse(
            "ends with '/', which makes it a prefix: list with ?prefix= instead",
        ));
    }
    Ok(())
}

/// Checks a `?prefix=` of a listing.
///
/// # Errors
///
/// 400 `bad_prefix` unless it is empty or ends with `/`, and is at most
/// [`MAX_KEY_BYTES`] long.
pub fn check_prefix(prefix: &str) -> Result<(), ApiError> {
    if prefix.is_empty() {
        return Ok(());
    }
    if !prefix.ends_with('/') || prefix.len() > MAX_KEY_BYTES {
        return Err(ApiError::bad_request(
            "bad_prefix",
            format!(
                "prefix {prefix:?} is not allowed: give one ending with '/', e.g. user/, of at most {MAX_KEY_BYTES} bytes"
            ),
        ));
    }
    Ok(())
}
