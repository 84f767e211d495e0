//! Cursor pagination over a scope's keys. The cursor is the last key of a page, encoded
//! as base64url without padding (opaque to clients); the next page holds the keys after
//! it in key order. Under concurrent writes no key comes twice and none that existed
//! throughout is skipped, since pages are ranges of an ordered key space, not offsets.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::errors::ApiError;

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

/// A page of `items` (sorted by `key_of`) after the key `after`: at most `limit` of them,
/// and the cursor of the next page if there are more.
pub fn page<T>(
    items: Vec<T>,
    key_of: impl Fn(&T) -> &str,
    after: Option<&str>,
    limit: usize,
) -> (Vec<T>, Option<String>) {
    let start = after.map_or(0, |after| {
        items.partition_point(|item| key_of(item) <= after)
    });
    let mut page: Vec<T> = items.into_iter().skip(start).take(limit + 1).collect();
    let next = if page.len() > limit {
        page.truncate(limit);
        page.last().map(|item| encode_cursor(key_of(item)))
    } else {
        None
    };
    (page, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_resume_after_the_cursor_key() {
        let keys = vec!["a/1", "a/2", "a/3"];
        let (first, next) = page(keys.clone(), |k| k, None, 2);
        assert_eq!(first, ["a/1", "a/2"]);
        let after = decode_cursor(&next.unwrap()).unwrap();
        assert_eq!(after, "a/2");
        let (second, next) = page(keys, |k| k, Some(&after), 2);
        assert_eq!((second, next), (vec!["a/3"], None));
    }

    #[test]
    fn a_key_removed_before_the_next_page_skips_nothing_else() {
        let (_, next) = page(vec!["k/1", "k/2", "k/3"], |k| k, None, 2);
        let after = decode_cursor(&next.unwrap()).unwrap();
        let (second, _) = page(vec!["k/1", "k/3", "k/4"], |k| k, Some(&after), 2);
        assert_eq!(second, ["k/3", "k/4"]);
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
