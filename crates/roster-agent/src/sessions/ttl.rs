//! Session time-to-live: parsed from text such as `10s`, `500ms` or `2m` (humantime) and
//! kept within [`MIN_TTL`] and [`MAX_TTL`].

use std::time::Duration;

use super::SessionError;

/// The shortest TTL a session may have.
pub const MIN_TTL: Duration = Duration::from_secs(1);

/// The longest TTL a session may have.
pub const MAX_TTL: Duration = Duration::from_secs(3600);

/// Parses a TTL and checks its bounds.
///
/// # Errors
///
/// [`SessionError::BadTtl`] for text that is not a duration or is out of bounds.
pub fn parse_ttl(text: &str) -> Result<Duration, SessionError> {
    let ttl = humantime::parse_duration(text.trim()).map_err(|e| SessionError::BadTtl {
        ttl: text.to_owned(),
        reason: e.to_string(),
    })?;
    if !(MIN_TTL..=MAX_TTL).contains(&ttl) {
        return Err(SessionError::BadTtl {
            ttl: text.to_owned(),
            reason: "out of bounds".to_owned(),
        });
    }
    Ok(ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_within_bounds() {
        assert_eq!(parse_ttl("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_ttl("1500ms").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_ttl("2m").unwrap(), Duration::from_secs(120));
        for bad in ["", "ten", "500ms", "2h", "-1s"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }
}
