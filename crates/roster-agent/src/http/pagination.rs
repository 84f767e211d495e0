//! Cursor pagination over a scope's keys. The cursor is the last key of a page, encoded
//! as base64url without padding (opaque to clients); the next page holds the keys after
//! it in key order. Under concurrent writes no key comes twice and none that existed
//! throughout is skipped, since pages are ranges of an ordered key space, not offsets.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use serde::Deserialize;
use utoipa::IntoParams;

use crate::errors::ApiError;

/// A page of a scope's keys (names or groups) to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The scope (default: the default scope).
    pub scope: Option<String>,
    /// Only keys under this prefix, which ends with `/` (default: all).
    pub prefix: Option<String>,
    /// The page size, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

/// The page size when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;

/// The largest page size.
pub const MAX_LIMIT: usize = 1000;

/// The cursor that resumes after `key`.
pub fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// The key a cursor resumes after.
///
/// # Errors
///
/// 400 `bad_cursor` for a cursor this API did not give.
pub fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "bad_cursor",
            "the cursor is not one this API gave (pass next_cursor as it is)",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    String::from_utf8(bytes).map_err(|_| bad())
}

/// The page size asked for.
///
/// # Errors
///
/// 400 `bad_limit` unless it is a whole number from 1 to `max`.
pub fn parse_limit(limit: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
    let Some(text) = limit else {
        return Ok(default);
    };
    match text.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_request(
            "bad_limit",
            format!("limit {text:?} is not allowed: give a whole number from 1 to {max}"),
        )),
    }
}

/// A page of `items` (sorted by `key_of`, read from the cursor on, one more than `limit`
/// if there are more): at most `limit` of them, and the cursor of the next page if there
/// are more.
pub fn page<T>(
    mut items: Vec<T>,
    key_of: impl Fn(&T) -> &str,
    limit: usize,
) -> (Vec<T>, Option<String>) {
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|item| encode_cursor(key_of(item)))
    } else {
        None
    };
    (items, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_of_one_more_than_the_limit_has_a_cursor_to_its_last_key() {
        let (first, next) = page(vec!["a/1", "a/2", "a/3"], |k| k, 2);
        assert_eq!(first, ["a/1", "a/2"]);
        assert_eq!(decode_cursor(&next.unwrap()).unwrap(), "a/2");
        let (last, next) = page(vec!["a/3"], |k| k, 2);
        assert_eq!((last, next), (vec!["a/3"], None));
    }

    #[test]
    fn bad_limits_and_cursors_are_refused() {
        for limit in ["0", "1001", "-1", "ten", ""] {
            assert_eq!(
                parse_limit(Some(limit), 100, 1000).unwrap_err().code(),
                "bad_limit"
            );
        }
        assert_eq!(decode_cursor("***").unwrap_err().code(), "bad_cursor");
        assert_eq!(decode_cursor("_w").unwrap_err().code(), "bad_cursor");
    }
}
