//! Pids as the API spells them, `<incarnation.serial>` with the incarnation in 16 hex
//! digits (as `roster::Pid` displays them), parsed back.

use roster::{Incarnation, Pid};

use crate::errors::ApiError;

/// Parses `<0123456789abcdef.17>`.
///
/// # Errors
///
/// 400 `bad_pid` for anything else.
pub fn parse_pid(text: &str) -> Result<Pid, ApiError> {
    let refuse = || {
        ApiError::bad_request(
            "bad_pid",
            format!(
                "{text:?} is not a pid: give one as the API shows them, e.g. <5f0c2a9e3b1d7c44.17>"
            ),
        )
    };
    let inner = text
        .strip_prefix('<')
        .and_then(|t| t.strip_suffix('>'))
        .ok_or_else(refuse)?;
    let (incarnation, serial) = inner.split_once('.').ok_or_else(refuse)?;
    if incarnation.len() != 16 {
        return Err(refuse());
    }
    let incarnation = u64::from_str_radix(incarnation, 16).map_err(|_| refuse())?;
    let serial = serial.parse::<u64>().map_err(|_| refuse())?;
    Ok(Pid::new(Incarnation::new(incarnation), serial))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_round_trips_and_bad_text_is_refused() {
        let pid = Pid::new(Incarnation::new(0x5f0c_2a9e_3b1d_7c44), 17);
        assert_eq!(parse_pid(&pid.to_string()).unwrap(), pid);
        for bad in [
            "",
            "<>",
            "5f0c2a9e3b1d7c44.17",
            "<5f0c.17>",
            "<5f0c2a9e3b1d7c44.x>",
        ] {
            assert_eq!(parse_pid(bad).unwrap_err().code(), "bad_pid", "{bad}");
        }
    }
}
